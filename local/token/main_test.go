package main_test

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/parcelhq/orderservice/internal/deploytest"
	"github.com/parcelhq/orderservice/local/jwtauth"
)

// TestTokenIsAcceptedByTheLocalGateway runs the command `make token` runs
// and checks its output with the verifier `make local` uses, on the same
// key file.
func TestTokenIsAcceptedByTheLocalGateway(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	bin := filepath.Join(dir, "token")
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	if out, err := exec.CommandContext(ctx, "go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	keyFile := filepath.Join(dir, "key.pem")
	run := func(args ...string) (string, error) {
		cmd := exec.CommandContext(ctx, bin, args...)
		cmd.Env = append(os.Environ(), jwtauth.KeyFileEnv+"="+keyFile)
		out, err := cmd.Output()
		return strings.TrimSpace(string(out)), err
	}

	alice, err := run("-sub", "alice")
	if err != nil {
		t.Fatal(err)
	}
	reader, err := run("-sub", "bob", "-scopes", "orders/read")
	if err != nil {
		t.Fatal(err)
	}
	key, err := jwtauth.LoadOrCreateKey(keyFile) // the key the command made
	if err != nil {
		t.Fatal(err)
	}
	v := jwtauth.LocalVerifier(key)

	t.Run("the token is for its subject, with both scopes by default, and one line of output", func(t *testing.T) {
		jwt, d := v.Verify("Bearer "+alice, []string{"orders/create"})
		if d != nil || jwt.Claims["sub"] != "alice" || strings.Join(jwt.Scopes, " ") != "orders/create orders/read" || strings.Contains(alice, "\n") {
			t.Fatalf("%+v %+v %q", jwt, d, alice)
		}
	})
	t.Run("SCOPES narrows the token: a read-only token cannot create", func(t *testing.T) {
		if _, d := v.Verify("Bearer "+reader, []string{"orders/create"}); d == nil || d.Status != 403 {
			t.Fatalf("read-only token on create: %+v", d)
		}
		if _, d := v.Verify("Bearer "+reader, []string{"orders/read"}); d != nil {
			t.Fatalf("read-only token on read: %+v", d)
		}
	})
	t.Run("without a subject it prints no token and fails", func(t *testing.T) {
		out, err := run()
		var exit *exec.ExitError
		if !errors.As(err, &exit) || exit.ExitCode() == 0 || out != "" {
			t.Fatalf("err %v, stdout %q", err, out)
		}
	})
}

// TestMakeTokenPassesAnyName runs `make -s token` itself: the Makefile hands
// SUB and SCOPES to the command unchanged, whatever shell metacharacters
// they hold.
func TestMakeTokenPassesAnyName(t *testing.T) {
	t.Parallel()
	if _, err := exec.LookPath("make"); err != nil {
		t.Skip("no make on PATH")
	}
	keyFile := filepath.Join(t.TempDir(), "key.pem")
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	for _, sub := range []string{"o'brien", `a "quoted" name`, "$HOME `id` $(id)"} {
		t.Run("SUB="+sub+" is the token's subject exactly", func(t *testing.T) {
			cmd := exec.CommandContext(ctx, "make", "-s", "-C", deploytest.RepoRoot(), "token", "SUB="+sub, "SCOPES=orders/read")
			cmd.Env = append(os.Environ(), jwtauth.KeyFileEnv+"="+keyFile)
			out, err := cmd.Output()
			if err != nil {
				t.Fatalf("make token: %v", err)
			}
			key, err := jwtauth.LoadOrCreateKey(keyFile)
			if err != nil {
				t.Fatal(err)
			}
			jwt, d := jwtauth.LocalVerifier(key).Verify("Bearer "+strings.TrimSpace(string(out)), []string{"orders/read"})
			if d != nil || jwt.Claims["sub"] != sub || strings.Join(jwt.Scopes, " ") != "orders/read" {
				t.Fatalf("claims %+v, scopes %v, denial %+v; want sub %q", jwt.Claims, jwt.Scopes, d, sub)
			}
		})
	}
}
