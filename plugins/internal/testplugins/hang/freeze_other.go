//go:build !unix

package main

func freeze() {}
