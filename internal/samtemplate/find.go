package samtemplate

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
)

// Find returns the file name names: name itself when it is absolute or
// exists relative to the working directory, else name joined to the nearest
// parent of the working directory where that exists (so "template.yaml"
// finds the repository's template from any package or subdirectory). It
// fails when there is none.
func Find(name string) (string, error) {
	if filepath.IsAbs(name) {
		return name, nil
	}
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		p := filepath.Join(dir, name)
		if _, err := os.Stat(p); err == nil {
			return p, nil
		} else if !errors.Is(err, os.ErrNotExist) {
			return "", err
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", fmt.Errorf("no %s in the working directory or any parent", name)
		}
		dir = parent
	}
}
