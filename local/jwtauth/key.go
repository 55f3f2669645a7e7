package jwtauth

import (
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// The local identity provider's names. Tokens Mint makes carry them, and the
// Verifier local/serve uses accepts only them.
const (
	// Issuer is the iss of local tokens. A caller's scope (and so the owner
	// of its orders) is "jwt:" + Issuer + "|" + sub.
	Issuer = "https://orderservice.local/idp"
	// Audience is the client_id of local tokens, the audience the local
	// authorizer accepts (like a Cognito app client's id).
	Audience = "orderservice-local"
)

// DefaultKeyFile is where `make local` and `make token` keep the key pair,
// relative to the repository root (.local/ is ignored by git).
const DefaultKeyFile = ".local/jwt-signing-key.pem"

// KeyFileEnv names the variable that overrides DefaultKeyFile.
const KeyFileEnv = "LOCAL_JWT_KEY"

// KeyFile returns the key pair's path: $LOCAL_JWT_KEY, or DefaultKeyFile.
func KeyFile() string {
	if v := os.Getenv(KeyFileEnv); v != "" {
		return v
	}
	return DefaultKeyFile
}

// DefaultTTL is how long a minted token is valid: Cognito's default access
// token validity.
const DefaultTTL = time.Hour

// keyBits is the RSA modulus size: API Gateway's JWT authorizer accepts only
// RSA-signed tokens.
const keyBits = 2048

// Key is the local identity provider's RSA signing key. It is safe for
// concurrent use.
type Key struct {
	priv *rsa.PrivateKey
	kid  string
}

// LoadOrCreateKey returns the key kept at path (PEM, PKCS #8), first making
// a new one there when there is none: the directory with mode 0700, the file
// with 0600, written whole under a temporary name and linked into place, so
// that two processes starting at once end up with the same key. It fails
// when the file exists but holds no RSA private key, or cannot be read or
// written.
func LoadOrCreateKey(path string) (*Key, error) {
	if k, err := loadKey(path); !errors.Is(err, fs.ErrNotExist) {
		return k, err
	}
	priv, err := rsa.GenerateKey(rand.Reader, keyBits)
	if err != nil {
		return nil, fmt.Errorf("jwtauth: generate key: %w", err)
	}
	der, err := x509.MarshalPKCS8PrivateKey(priv)
	if err != nil {
		return nil, fmt.Errorf("jwtauth: encode key: %w", err)
	}
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("jwtauth: %w", err)
	}
	tmp, err := os.CreateTemp(dir, ".jwt-key-*")
	if err != nil {
		return nil, fmt.Errorf("jwtauth: %w", err)
	}
	defer os.Remove(tmp.Name())
	werr := pem.Encode(tmp, &pem.Block{Type: "PRIVATE KEY", Bytes: der})
	if cerr := tmp.Close(); werr == nil {
		werr = cerr
	}
	if werr != nil {
		return nil, fmt.Errorf("jwtauth: write key: %w", werr)
	}
	if err := os.Link(tmp.Name(), path); err != nil && !errors.Is(err, fs.ErrExist) {
		return nil, fmt.Errorf("jwtauth: %w", err)
	}
	return loadKey(path) // ours, or the one another process linked first
}

func loadKey(path string) (*Key, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	block, _ := pem.Decode(b)
	if block == nil || block.Type != "PRIVATE KEY" {
		return nil, fmt.Errorf("jwtauth: %s holds no PEM private key", path)
	}
	k, err := x509.ParsePKCS8PrivateKey(block.Bytes)
	if err != nil {
		return nil, fmt.Errorf("jwtauth: %s: %w", path, err)
	}
	priv, ok := k.(*rsa.PrivateKey)
	if !ok {
		return nil, fmt.Errorf("jwtauth: %s holds a %T, not an RSA key", path, k)
	}
	return newKey(priv)
}

func newKey(priv *rsa.PrivateKey) (*Key, error) {
	pub, err := x509.MarshalPKIXPublicKey(&priv.PublicKey)
	if err != nil {
		return nil, fmt.Errorf("jwtauth: %w", err)
	}
	sum := sha256.Sum256(pub)
	return &Key{priv: priv, kid: base64.RawURLEncoding.EncodeToString(sum[:16])}, nil
}

// KeyID is the key's id, the kid header of the tokens it signs: derived
// from the public key, so it changes whenever the key does.
func (k *Key) KeyID() string { return k.kid }

// Public returns the key's public half.
func (k *Key) Public() *rsa.PublicKey { return &k.priv.PublicKey }

// Mint returns an RS256 access token for subject sub with the given scopes,
// valid from now for ttl (DefaultTTL when ttl <= 0): iss Issuer, client_id
// Audience, sub, scope (space-separated), token_use "access", iat, exp and
// a random jti, the claims of a Cognito client-credentials access token. It
// fails on an empty sub.
func (k *Key) Mint(sub string, scopes []string, ttl time.Duration) (string, error) {
	if sub == "" {
		return "", errors.New("jwtauth: a token needs a subject")
	}
	if ttl <= 0 {
		ttl = DefaultTTL
	}
	now := time.Now()
	var jti [16]byte
	_, _ = rand.Read(jti[:])
	return k.Sign(map[string]any{
		"iss": Issuer, "sub": sub, "client_id": Audience, "token_use": "access",
		"scope": strings.Join(scopes, " "),
		"iat":   now.Unix(), "exp": now.Add(ttl).Unix(),
		"jti": base64.RawURLEncoding.EncodeToString(jti[:]),
	})
}

// Sign returns claims as a JWT signed with RS256 under the key's kid,
// whatever the claims say (tests use it for expired or foreign tokens).
func (k *Key) Sign(claims map[string]any) (string, error) {
	return k.sign(map[string]any{"alg": "RS256", "typ": "JWT", "kid": k.kid}, claims)
}

func (k *Key) sign(header, claims map[string]any) (string, error) {
	h, err := json.Marshal(header)
	if err != nil {
		return "", fmt.Errorf("jwtauth: %w", err)
	}
	c, err := json.Marshal(claims)
	if err != nil {
		return "", fmt.Errorf("jwtauth: %w", err)
	}
	input := base64.RawURLEncoding.EncodeToString(h) + "." + base64.RawURLEncoding.EncodeToString(c)
	sum := sha256.Sum256([]byte(input))
	sig, err := rsa.SignPKCS1v15(rand.Reader, k.priv, crypto.SHA256, sum[:])
	if err != nil {
		return "", fmt.Errorf("jwtauth: sign: %w", err)
	}
	return input + "." + base64.RawURLEncoding.EncodeToString(sig), nil
}
