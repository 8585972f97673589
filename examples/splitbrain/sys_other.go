//go:build !unix

package main

import (
	"context"
	"os"
	"os/exec"
)

func startProcess(cmd *exec.Cmd, _ <-chan struct{}) error { return cmd.Start() }

func freeze(*os.Process) error { return errUnsupported }

func thaw(*os.Process) error { return nil }

func waitStopped(context.Context, int) error { return errUnsupported }
