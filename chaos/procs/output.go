package procs

import (
	"bytes"
	"io"
	"sync"
)

// maxLine bounds a buffered line: a child that writes more without a newline has it cut.
const maxLine = 64 << 10

// lineWriter writes a child's output to w a whole line at a time, each line prefixed with
// the child's name, so the lines of children sharing w never interleave.
type lineWriter struct {
	mu     *sync.Mutex // shared by every child writing to w
	w      io.Writer
	prefix []byte
	buf    []byte
}

func newLineWriter(mu *sync.Mutex, w io.Writer, name string) *lineWriter {
	return &lineWriter{mu: mu, w: w, prefix: []byte(name + " | ")}
}

// Write implements io.Writer. It never fails: an output that cannot be written must not
// break the child's pipe.
func (l *lineWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.buf = append(l.buf, p...)
	for {
		i := bytes.IndexByte(l.buf, '\n')
		if i < 0 {
			break
		}
		l.emit(l.buf[:i+1])
		l.buf = l.buf[i+1:]
	}
	if len(l.buf) >= maxLine {
		l.emit(append(l.buf, '\n'))
		l.buf = nil
	}
	// Keep the rest at the start of a buffer, so the backing array does not grow forever.
	l.buf = append([]byte(nil), l.buf...)
	return len(p), nil
}

// flush writes a last line without its newline, once the child has exited.
func (l *lineWriter) flush() {
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.buf) > 0 {
		l.emit(append(l.buf, '\n'))
		l.buf = nil
	}
}

func (l *lineWriter) emit(line []byte) {
	out := make([]byte, 0, len(l.prefix)+len(line))
	out = append(append(out, l.prefix...), line...)
	_, _ = l.w.Write(out)
}
