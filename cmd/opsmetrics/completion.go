package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"sort"
	"strings"
)

// subcommands are the second words of the commands that take one.
var subcommands = map[string][]string{
	"kpi":        {"explain"},
	"baselines":  {"learn", "show"},
	"anomaly":    {"detect", "score"},
	"dashboards": {"build", "provision"},
	"targets":    {"review"},
	"catalog":    {"check", "store"},
}

// runCompletion writes the shell completion script of args[0], bash or
// zsh: command names, subcommands and each one's flags.
func runCompletion(args []string, w io.Writer) error {
	if len(args) == 1 && isHelp(args[0]) {
		fmt.Fprint(w, "Usage: opsmetrics completion bash|zsh\n\nwrite the shell completion script: source <(opsmetrics completion bash), or in zsh source <(opsmetrics completion zsh).\n")
		return nil
	}
	if len(args) != 1 || (args[0] != "bash" && args[0] != "zsh") {
		return usagef("usage: opsmetrics completion bash|zsh")
	}
	var b strings.Builder
	if args[0] == "zsh" {
		// zsh runs the bash function through its bashcompinit layer.
		b.WriteString("#compdef opsmetrics\nautoload -U +X bashcompinit && bashcompinit\n")
	}
	b.WriteString("_opsmetrics() {\n\tlocal cur=${COMP_WORDS[COMP_CWORD]} words=\"\"\n")
	b.WriteString("\tif [ \"$COMP_CWORD\" -eq 1 ]; then\n")
	fmt.Fprintf(&b, "\t\tCOMPREPLY=($(compgen -W %q -- \"$cur\"))\n\t\treturn\n\tfi\n", strings.Join(append(commandNames(), "completion"), " "))
	b.WriteString("\tcase \"${COMP_WORDS[1]}\" in\n")
	for _, c := range commands {
		subs := subcommands[c.name]
		fmt.Fprintf(&b, "\t%s)\n", c.name)
		if len(subs) > 0 {
			fmt.Fprintf(&b, "\t\tif [ \"$COMP_CWORD\" -eq 2 ]; then words=%q; fi\n", strings.Join(subs, " "))
		}
		fmt.Fprintf(&b, "\t\tcase \"${COMP_WORDS[2]}\" in\n")
		for _, s := range subs {
			fmt.Fprintf(&b, "\t\t%s) words=\"$words %s\" ;;\n", s, strings.Join(flagsOf(c, s), " "))
		}
		if subcommands[c.name] == nil || c.name == "kpi" {
			fmt.Fprintf(&b, "\t\t*) words=\"$words %s\" ;;\n", strings.Join(flagsOf(c, ""), " "))
		}
		b.WriteString("\t\tesac ;;\n")
	}
	b.WriteString("\tcompletion) words=\"bash zsh\" ;;\n\tesac\n")
	b.WriteString("\tCOMPREPLY=($(compgen -W \"$words\" -- \"$cur\"))\n}\ncomplete -F _opsmetrics opsmetrics\n")
	_, err := io.WriteString(w, b.String())
	return err
}

// flagsOf lists, as --flag, the flags that command c (with subcommand sub)
// registers: its run answers --help once its flags are bound.
func flagsOf(c command, sub string) []string {
	fs := flag.NewFlagSet(c.name, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.Usage = func() {}
	args := []string{"--help"}
	if sub != "" {
		args = []string{sub, "--help"}
	}
	c.run(context.Background(), fs, args)
	var names []string
	fs.VisitAll(func(f *flag.Flag) { names = append(names, "--"+f.Name) })
	sort.Strings(names)
	return names
}
