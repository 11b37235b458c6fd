package event

import (
	"regexp"
	"strconv"
	"testing"
)

// The grammars of a semantic version (semver.org, section 11) and of the
// subject and predicate of a CDEvents type, as regular expressions: the
// references for parseSemver and cdTypeName.
var (
	semverGrammar = regexp.MustCompile(`^(0|[1-9][0-9]*)\.(0|[1-9][0-9]*)\.(0|[1-9][0-9]*)` +
		`(?:-(?:0|[1-9][0-9]*|[0-9]*[a-zA-Z-][0-9a-zA-Z-]*)(?:\.(?:0|[1-9][0-9]*|[0-9]*[a-zA-Z-][0-9a-zA-Z-]*))*)?` +
		`(?:\+[0-9a-zA-Z-]+(?:\.[0-9a-zA-Z-]+)*)?$`)
	typeNameGrammar = regexp.MustCompile(`^[a-z][a-zA-Z0-9]{0,39}$`)
)

// wantSemver is what parseSemver must return for v, by the grammar.
func wantSemver(v string) (major, minor int, ok bool) {
	m := semverGrammar.FindStringSubmatch(v)
	if m == nil {
		return 0, 0, false
	}
	major, err1 := strconv.Atoi(m[1])
	minor, err2 := strconv.Atoi(m[2])
	return major, minor, err1 == nil && err2 == nil
}

func checkGrammars(t *testing.T, v string) {
	t.Helper()
	major, minor, ok := parseSemver(v)
	if wmajor, wminor, wok := wantSemver(v); ok != wok || ok && (major != wmajor || minor != wminor) {
		t.Errorf("parseSemver(%q) = %d, %d, %v; the grammar says %d, %d, %v", v, major, minor, ok, wmajor, wminor, wok)
	}
	if got, want := cdTypeName(v), typeNameGrammar.MatchString(v); got != want {
		t.Errorf("cdTypeName(%q) = %v; the grammar says %v", v, got, want)
	}
}

// TestSemverGrammar holds parseSemver and cdTypeName to the grammars.
func TestSemverGrammar(t *testing.T) {
	for _, v := range []string{"", "0.5.1", "0.4.1", "1.2.3", "10.20.30", "0.6.0-draft", "1.0.0-alpha.1", "1.0.0-0.3.7",
		"1.0.0-x.7.z.92", "1.0.0-x-y-z.--", "1.0.0+20130313144700", "1.0.0-beta+exp.sha.5114f85", "1.0.0+21AF26D3----117B344092BD",
		"01.1.1", "1.01.1", "1.1.01", "1.2", "1.2.3.4", "1.2.3-", "1.2.3+", "1.2.3-01", "1.2.3-0a", "1.2.3-a..b", "1.2.3-+b",
		"1.2.3+a..b", "1.2.3+a+b", "1.2.3-a+b+c", "-1.2.3", "1.2.3 ", " 1.2.3", "1.2.3\n", "v1.2.3", "1.2.3-é", "1.2.3+é",
		"99999999999999999999.0.0", "0.99999999999999999999.0", "0.0.99999999999999999999", "1.2.3-a.01", "1.2.3-01a",
		"service", "deployed", "pipelineRun", "Service", "9lives", "a", "a-b", "a_b", "abcdefghijklmnopqrstuvwxyzabcdefghijklmn",
		"abcdefghijklmnopqrstuvwxyzabcdefghijklmno", "café"} {
		checkGrammars(t, v)
	}
}

func FuzzSemverGrammar(f *testing.F) {
	for _, v := range []string{"0.5.1", "1.0.0-alpha.1+build.7", "1.2.3-0a", "service", "pipelineRun"} {
		f.Add(v)
	}
	f.Fuzz(checkGrammars)
}
