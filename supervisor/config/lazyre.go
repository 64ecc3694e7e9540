package config

import (
	"regexp"
	"sync"
)

// lazyRE is a regular expression compiled on first use, so that every kin
// command, which links this package, does not pay for compiling them.
type lazyRE struct {
	src  string
	once sync.Once
	re   *regexp.Regexp
}

func lazyRegexp(src string) *lazyRE { return &lazyRE{src: src} }

func (l *lazyRE) get() *regexp.Regexp {
	l.once.Do(func() { l.re = regexp.MustCompile(l.src) })
	return l.re
}

func (l *lazyRE) FindStringSubmatch(s string) []string { return l.get().FindStringSubmatch(s) }
func (l *lazyRE) MatchString(s string) bool            { return l.get().MatchString(s) }
func (l *lazyRE) ReplaceAllString(s, r string) string  { return l.get().ReplaceAllString(s, r) }
