//go:build !unix

package main

import "os/exec"

// setProcessGroup leaves cmd as it is: ending it (when its context ends)
// kills the shell only.
func setProcessGroup(*exec.Cmd) {}

// killProcessGroup does nothing where process groups are not available.
func killProcessGroup(*exec.Cmd) {}
