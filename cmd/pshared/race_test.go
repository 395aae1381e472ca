//go:build (darwin || freebsd || linux) && race

package main

const raceEnabled = true
