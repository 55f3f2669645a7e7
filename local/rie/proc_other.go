//go:build !linux

package rie

import (
	"errors"
	"os/exec"
)

// NewPool refuses to run where Supported is false; these exist so that the
// package builds everywhere.

func setProcessGroup(*exec.Cmd) {}

func signalGroup(cmd *exec.Cmd, _ bool) {
	if cmd.Process != nil {
		_ = cmd.Process.Kill()
	}
}

func listensOn(int, ...string) (bool, error) {
	return false, errors.New("rie: the Lambda Runtime Interface Emulator runs on linux only")
}
