// Package progress carries what a build is doing as a stream of Events to a
// Sink, and renders that stream three ways: TTY (a live view of running
// actions with elapsed time, then a summary), Plain (one line per event, the
// default when stderr is not a terminal) and JSON (one object per line, for
// CI). It holds no build logic: builder/graph sends events, cmd/uvmbuild/cli
// picks the renderer.
package progress
