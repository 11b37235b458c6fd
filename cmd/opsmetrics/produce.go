package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"

	"github.com/schollz/progressbar/v3"
	"github.com/segmentio/kafka-go"

	"github.com/opsmetrics/opsmetrics/internal/publish"
)

func runProduce(ctx context.Context, fs *flag.FlagSet, args []string) error {
	parse := bind(fs, setBrokers, setTopics)
	file := fs.String("file", "", "JSON Lines file of events, native or CloudEvents structured mode (- for standard input)")
	cfg, err := parse(args)
	if err != nil {
		return err
	}
	if err := cfg.require(setBrokers); err != nil {
		return err
	}
	if *file == "" {
		return usagef("--file is required")
	}
	var r io.Reader = os.Stdin
	size := int64(-1)
	if *file != "-" {
		f, err := os.Open(*file)
		if err != nil {
			return err
		}
		defer f.Close()
		if st, err := f.Stat(); err == nil {
			size = st.Size()
		}
		r = f
	}
	rt, err := cfg.Kafka.RoundTripper()
	if err != nil {
		return err
	}
	p := publish.New(cfg.Kafka.Brokers, publish.TopicsFrom(cfg.Topics), rt)
	defer p.Close()
	if isTerminal(os.Stderr) {
		bar := progressbar.DefaultBytes(size, "producing")
		r = io.TeeReader(r, bar)
		defer bar.Finish()
	}
	n, err := p.File(ctx, r)
	if err != nil {
		// A batch the brokers took in part: count its acknowledged events.
		var we kafka.WriteErrors
		if errors.As(err, &we) {
			n += len(we) - we.Count()
		}
		return fmt.Errorf("%d events acknowledged by the brokers, then: %w", n, err)
	}
	fmt.Fprintf(os.Stderr, "produced %d events\n", n)
	return nil
}
