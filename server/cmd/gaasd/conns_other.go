//go:build !unix

package main

// descriptorLimit is a guess where the process's limit cannot be read.
func descriptorLimit() (int, error) { return 8192, nil }
