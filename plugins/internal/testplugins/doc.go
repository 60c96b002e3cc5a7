// Package testplugins holds small plugin binaries that the host's tests
// build and start: echo answers, crash panics once mid-invocation, hang
// ignores its context once, oldproto speaks another protocol version, and
// counter is a source plugin that crashes or freezes once on request.
package testplugins
