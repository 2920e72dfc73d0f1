// Package hospitals is the reference scenario of Styx (the paper's Fig. 1): hospitals jointly
// train a cancer classifier on the Wisconsin breast cancer data, a newcomer fine-tunes it, and a
// clinic queries it, each owner under its own sticky policy. It embeds the data set and the
// policy templates; `styx demo` (package demo) runs the story.
package hospitals

import (
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"strings"
)

//go:embed data/wdbc.csv
var WDBC []byte

//go:embed policies/*.yaml
var policies embed.FS

// Policy renders the policy template of a party ("hospital-a" … "hospital-d") with vars: each
// ${name} is replaced by vars[name]. A variable left unset is an error, never silently empty.
func Policy(name string, vars map[string]string) ([]byte, error) {
	return PolicyFrom(nil, name, vars)
}

// PolicyFrom renders the template name+".yaml" of fsys if it has one, else the embedded one
// (fsys nil: always the embedded one), as [Policy] does.
func PolicyFrom(fsys fs.FS, name string, vars map[string]string) ([]byte, error) {
	var b []byte
	var err error = fs.ErrNotExist
	if fsys != nil && fs.ValidPath(name) {
		b, err = fs.ReadFile(fsys, name+".yaml")
		if err != nil && !errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("hospitals: policy template %s: %w", name, err)
		}
	}
	if err != nil {
		if b, err = policies.ReadFile("policies/" + name + ".yaml"); err != nil {
			return nil, fmt.Errorf("hospitals: no policy template %q", name)
		}
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
