package main

import (
	"os"
	"os/exec"
	"regexp"
	"testing"
)

// TestMain runs main instead of the tests in the processes TestExample
// starts: the example, and the children the example starts in turn.
func TestMain(m *testing.M) {
	if os.Getenv("RUN_EXAMPLE") != "" || os.Getenv(childEnv) != "" {
		main()
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// TestExample runs the example as a program and checks what it prints.
func TestExample(t *testing.T) {
	cmd := exec.Command(os.Args[0])
	cmd.Env = append(os.Environ(), "RUN_EXAMPLE=1", "GORACE=atexit_sleep_ms=0 "+os.Getenv("GORACE"))
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	for _, line := range []string{`setup ran 1 time\(s\)`} {
		if !regexp.MustCompile(`(?m)^` + line + `$`).Match(out) {
			t.Errorf("output lacks %s:\n%s", line, out)
		}
	}
}
