//go:build (darwin || freebsd || linux) && !race

package pshared

const raceEnabled = false
