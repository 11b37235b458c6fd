package anomaly_test

import (
	"fmt"
	"github.com/opsmetrics/opsmetrics/anomaly"
	"math"
	"os"
	"strings"
	"testing"
)

func TestZZNAB(t *testing.T) {
	if os.Getenv("NABDIAG") == "" {
		t.Skip()
	}
	series, err := nabCorpus(nabGitDir)
	if err != nil {
		t.Fatal(err)
	}
	if os.Getenv("NABDIAG") == "synth" {
		series = denseSynthetic()
	}
	files := make([]nabFile, len(series))
	seasons := make([]int, len(series))
	for i, s := range series {
		sc, _ := denseOurs(s)
		files[i] = denseNABFile(s, sc)
		_, rep, _ := anomaly.ScoreSeries(s.points, false, anomaly.ScoreOptions{Kind: "dense"})
		seasons[i] = rep.Season
	}
	res := nabScore(files, nabStandard)
	fmt.Printf("score %.1f thr %.4f det %d fp %d\n", res.score, res.threshold, res.detected, res.fp)
	for i, f := range files {
		r := nabScoreAt([]nabFile{f}, nabStandard, res.threshold)
		first := ""
		for _, w := range f.windows {
			mx := 0.0
			for k, tm := range f.times {
				if !tm.Before(w[0]) && !tm.After(w[1]) && f.scores[k] > mx {
					mx = f.scores[k]
				}
			}
			found := fmt.Sprintf("miss(%.3f)", mx)
			for k, tm := range f.times {
				if !tm.Before(w[0]) && !tm.After(w[1]) && f.scores[k] >= res.threshold {
					found = fmt.Sprintf("%.2f", float64(tm.Sub(w[0]))/float64(w[1].Sub(w[0])))
					break
				}
			}
			first += " " + found
		}
		if os.Getenv("FPS") != "" {
			for k, tm := range f.times {
				in := false
				for _, w := range f.windows {
					if !tm.Before(w[0]) && !tm.After(w[1]) {
						in = true
					}
				}
				if !in && f.scores[k] >= res.threshold && k >= 600 {
					fmt.Printf("  FP %s %s %.3f\n", series[i].name, tm.Format("01-02 15:04"), f.scores[k])
				}
			}
		}
		fmt.Printf("season %5d ", seasons[i])
		fmt.Printf("%-55s rows %6d win %d det %d fp %3d  score %6.1f  first:%s\n", series[i].name, len(f.times), len(f.windows), r.detected, r.fp, r.score, first)
	}
}

func TestZZNABOne(t *testing.T) {
	name := os.Getenv("NABONE")
	if name == "" {
		t.Skip()
	}
	series, _ := nabCorpus(nabGitDir)
	for _, s := range series {
		if !strings.Contains(s.name, name) {
			continue
		}
		rows, rep, _ := anomaly.ScoreSeries(s.points, false, anomaly.ScoreOptions{Kind: "dense"})
		fmt.Println(s.name, rep, s.windows)
		for i, r := range rows {
			in := ""
			for _, w := range s.windows {
				if !r.Time.Before(w[0]) && !r.Time.After(w[1]) {
					in = "W"
				}
			}
			sc := rarity(math.Log10(math.Max(r.Tail, 1e-300)))
			if !r.Judged {
				sc = 0
			}
			if in != "" || sc > 0.72 {
				fmt.Printf("%5d %s %s %10.2f exp %10.2f [%8.2f %8.2f] sc %.3f %s\n", i, r.Time.Format("01-02 15:04"), in, r.Value, r.Expected, r.Lower, r.Upper, sc, r.Test)
			}
		}
	}
}

func TestZZNABFlags(t *testing.T) {
	if os.Getenv("NABFLAGS") == "" {
		t.Skip()
	}
	series, _ := nabCorpus(nabGitDir)
	for _, s := range series {
		rows, _, _ := anomaly.ScoreSeries(s.points, false, anomaly.ScoreOptions{Kind: "dense"})
		var in []int
		out := 0
		for _, w := range s.windows {
			n := 0
			for _, r := range rows {
				if r.Anomaly && !r.Time.Before(w[0]) && !r.Time.After(w[1]) {
					n++
				}
			}
			in = append(in, n)
		}
		for _, r := range rows {
			if r.Anomaly {
				out++
			}
		}
		fmt.Println(s.name, in, "total flags", out)
	}
}
