// Package testplugins holds small plugin binaries that the host's tests
// build and start: echo answers, crash panics once mid-invocation, hang
// ignores its context once, and oldproto speaks another protocol version.
package testplugins
