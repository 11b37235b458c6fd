package main

import (
	"os"
	"sync"
	"time"

	"github.com/schollz/progressbar/v3"
)

// isTerminal reports whether f is a terminal: progress is shown there
// only, never in a pipe or a file.
func isTerminal(f *os.File) bool {
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}

// spinner shows desc and the time taken on stderr while a job runs, when
// stderr is a terminal; the returned function ends it. describe, when set,
// is called every second for a fresh description.
func spinner(desc string, describe func() string) (stop func()) {
	if !isTerminal(os.Stderr) {
		return func() {}
	}
	bar := progressbar.NewOptions(-1, progressbar.OptionSetWriter(os.Stderr), progressbar.OptionSetDescription(desc),
		progressbar.OptionSpinnerType(14), progressbar.OptionSetRenderBlankState(true), progressbar.OptionClearOnFinish())
	done := make(chan struct{})
	go func() {
		t := time.NewTicker(100 * time.Millisecond)
		defer t.Stop()
		for n := 0; ; n++ {
			select {
			case <-done:
				return
			case <-t.C:
				if describe != nil && n%10 == 0 {
					bar.Describe(describe())
				}
				bar.Add(1)
			}
		}
	}()
	var once sync.Once
	return func() {
		once.Do(func() {
			close(done)
			bar.Finish()
		})
	}
}
