// Package deploytest checks the deployment and API description files
// (template.yaml, api/openapi.yaml, events/*.json, samconfig.toml) against the
// Go code they describe, so that neither can change without the other. Its
// tests are the project's substitute for `sam validate`, which needs the SAM
// CLI; they read the template with internal/samtemplate, the reader the
// local runner uses too.
package deploytest

import (
	"path/filepath"
	"runtime"
)

// RepoRoot returns the repository's root directory (where go.mod is).
func RepoRoot() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(file), "..", "..")
}
