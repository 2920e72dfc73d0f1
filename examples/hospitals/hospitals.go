// Package hospitals is the reference scenario of Styx (the paper's Fig. 1): hospitals jointly
// train a cancer classifier on the Wisconsin breast cancer data, a newcomer fine-tunes it, and a
// clinic queries it, each owner under its own sticky policy. It embeds the data set and the
// policy templates; `styx demo` (package demo) runs the story.
package hospitals

import (
	"embed"
	"fmt"
	"strings"
)

//go:embed data/wdbc.csv
var WDBC []byte

//go:embed policies/*.yaml
var policies embed.FS

// Policy renders the policy template of a party ("hospital-a" … "hospital-d") with vars: each
// ${name} is replaced by vars[name]. A variable left unset is an error, never silently empty.
func Policy(name string, vars map[string]string) ([]byte, error) {
	b, err := policies.ReadFile("policies/" + name + ".yaml")
	if err != nil {
		return nil, fmt.Errorf("hospitals: no policy template %q", name)
	}
	s := string(b)
	for k, v := range vars {
		s = strings.ReplaceAll(s, "${"+k+"}", v)
	}
	if i := strings.Index(s, "${"); i >= 0 {
		end := strings.IndexByte(s[i:], '}')
		return nil, fmt.Errorf("hospitals: policy %s: variable %s is not set", name, s[i:i+end+1])
	}
	return []byte(s), nil
}
