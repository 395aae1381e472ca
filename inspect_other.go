//go:build !darwin && !freebsd && !linux

package processshared

import "io/fs"

// This system has no segments (see segment_other.go): List, Inspect and
// RemoveStale return an error wrapping errors.ErrUnsupported.

func fileUID(fi fs.FileInfo) int { return -1 }

func segmentNames(patterns []string) ([]string, error) { return nil, unsupported("list", "") }

func inspectNamed(name string) (SegmentInfo, fileID, error) {
	return SegmentInfo{}, fileID{}, unsupported("inspect", name)
}

func removeIfStale(name string, id fileID) (bool, error) { return false, unsupported("remove", name) }

func openedOrMapped(ids map[fileID]bool) map[fileID]bool { return nil }
