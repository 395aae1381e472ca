module github.com/processshared/processshared/bench

go 1.26.0

require (
	bitbucket.org/avd/go-ipc v0.6.1
	github.com/gofrs/flock v0.13.2
	github.com/processshared/processshared v0.0.0
	golang.org/x/sys v0.50.0
)

require github.com/pkg/errors v0.8.1 // indirect

replace github.com/processshared/processshared => ../
