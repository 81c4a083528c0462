//go:build !unix

package procs

import (
	"errors"
	"os"
	"syscall"
)

var errNoPause = errors.New("pausing a process needs SIGSTOP: a Unix system")

func sysProcAttr() *syscall.SysProcAttr { return nil }

func pauseProcess(*os.Process) error  { return errNoPause }
func resumeProcess(*os.Process) error { return errNoPause }
