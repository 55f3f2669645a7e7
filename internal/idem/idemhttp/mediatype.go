package idemhttp

import (
	"mime"
	"strings"
)

// mediaType is a request's Content-Type as the middleware compares and
// fingerprints it.
type mediaType struct {
	// essence is type/subtype, lower-cased; for a value that does not parse,
	// the lower-cased text before the first ";".
	essence string
	// norm is the normalised media type that two requests must share to be
	// the same request: essence, then the parameters with lower-cased names,
	// in order of name, values unquoted and re-quoted only where needed
	// (mime.FormatMediaType); a charset value is lower-cased, since charset
	// names are case-insensitive, and for a JSON type charset=utf-8 is
	// dropped, since JSON is UTF-8 whatever the label says (RFC 8259 section
	// 8.1). For a value that does not parse, the lower-cased, trimmed value.
	norm string
	// json: essence is application/json or application/*+json.
	json bool
	// parsed: the value is a valid media type with valid parameters (an
	// empty Content-Type is not).
	parsed bool
	// utf8: a JSON type labelled with no charset or with charset utf-8; for
	// other types, always true.
	utf8 bool
}

// parseMediaType normalises a Content-Type header value; it never fails.
func parseMediaType(contentType string) mediaType {
	essence, params, err := mime.ParseMediaType(contentType)
	if err != nil {
		raw := strings.ToLower(strings.TrimSpace(contentType))
		if essence == "" { // mime.ErrInvalidMediaParameter leaves the essence
			essence, _, _ = strings.Cut(raw, ";")
			essence = strings.TrimSpace(essence)
		}
		return mediaType{essence: essence, norm: raw, json: isJSONEssence(essence), utf8: true}
	}
	mt := mediaType{essence: essence, json: isJSONEssence(essence), parsed: true, utf8: true}
	if cs, ok := params["charset"]; ok {
		cs = strings.ToLower(cs)
		params["charset"] = cs
		if mt.json {
			if cs == "utf-8" {
				delete(params, "charset")
			} else {
				mt.utf8 = false
			}
		}
	}
	if len(params) == 0 {
		mt.norm = essence
		return mt
	}
	if mt.norm = mime.FormatMediaType(essence, params); mt.norm == "" {
		// Parameters mime can parse but not format back: compare the value as
		// sent, and never accept it.
		mt.norm, mt.parsed = strings.ToLower(strings.TrimSpace(contentType)), false
	}
	return mt
}

func isJSONEssence(mt string) bool {
	return mt == "application/json" || (strings.HasPrefix(mt, "application/") && strings.HasSuffix(mt, "+json"))
}
