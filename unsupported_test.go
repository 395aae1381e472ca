//go:build !darwin && !freebsd && !linux

package processshared_test

import (
	"errors"
	"testing"

	ps "github.com/processshared/processshared"
)

// TestUnsupported: on a system without segments, every call that would
// create, open, find or remove one returns an error wrapping
// errors.ErrUnsupported (and nothing needs a Segment that cannot exist).
func TestUnsupported(t *testing.T) {
	check := func(what string, err error) {
		t.Helper()
		if !errors.Is(err, errors.ErrUnsupported) {
			t.Errorf("%s: %v, want an error wrapping errors.ErrUnsupported", what, err)
		}
	}
	_, err := ps.Create("x", 1<<16, nil)
	check("Create", err)
	_, err = ps.Open("x")
	check("Open", err)
	_, err = ps.OpenOrCreate("x", 1<<16, nil)
	check("OpenOrCreate", err)
	_, err = ps.NewAnonymous("x", 1<<16, nil)
	check("NewAnonymous", err)
	check("Remove", ps.Remove("x"))
	_, err = ps.Inherit("x")
	check("Inherit", err)
	_, err = ps.List()
	check("List", err)
	_, err = ps.Inspect("x")
	check("Inspect", err)
	_, err = ps.RemoveStale()
	check("RemoveStale", err)
}
