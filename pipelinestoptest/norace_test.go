//go:build !race

package pipelinestoptest_test

const raceEnabled = false
