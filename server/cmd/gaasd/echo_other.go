//go:build !linux

package main

import (
	"errors"
	"os"
)

// echoOff cannot turn off a terminal's echo here: -password-stdin it is.
func echoOff(*os.File) (func(), error) {
	return nil, errors.New("no password prompt on this system")
}
