//go:build !linux && !darwin

package main

import "os"

// terminalColumns returns 0 (unknown) where the terminal's width cannot be
// asked for: the COLUMNS variable or the default width applies.
func terminalColumns(*os.File) int { return 0 }
