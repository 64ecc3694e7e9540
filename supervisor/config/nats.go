package config

import (
	"fmt"
	"strings"

	"github.com/kinproc/kin/supervisor"
)

var natsKeys = []string{"url", "urls", "user", "password", "replicas", "sync", "durability", "host", "port", "max_store", "cluster"}
var natsClusterKeys = []string{"name", "listen", "routes", "user", "password"}
var queueKeys = []string{"name", "concurrency", "timeout", "max_memory"}

// unknownKey reports key k, under path, as unknown, suggesting one of known.
func (d *decoder) unknownKey(k *value, path string, known []string) {
	msg := "unknown key"
	if s := suggest(k.text, known); s != "" {
		msg += " (did you mean " + s + "?)"
	}
	d.errorf(k, path, "%s", msg)
}

// text reads a string at key.
func (d *decoder) text(k, v *value, key string, dst *string) bool {
	if v.kind != kindString {
		d.errorf(k, key, "want a string, got %s", v.describe())
		return false
	}
	*dst = v.text
	return true
}

// count reads a whole number from lo to hi at key.
func (d *decoder) count(k, v *value, key string, lo, hi int64, dst *int) bool {
	n, ok := integer(v)
	if !ok || n < lo || n > hi {
		d.errorf(k, key, "want a whole number from %d to %d, got %s", lo, hi, v.describe())
		return false
	}
	*dst = int(n)
	return true
}

// texts reads a string or a list of strings at key.
func (d *decoder) texts(k, v *value, key string) ([]string, bool) {
	switch v.kind {
	case kindString:
		return []string{v.text}, true
	case kindList:
		out := make([]string, 0, len(v.list))
		for i, e := range v.list {
			if e.kind != kindString {
				d.errorf(e, fmt.Sprintf("%s[%d]", key, i), "want a string, got %s", e.describe())
				return nil, false
			}
			out = append(out, e.text)
		}
		return out, true
	}
	d.errorf(k, key, "want a string or a list of strings, got %s", v.describe())
	return nil, false
}

// decodeNATS reads the top-level nats mapping v (at key k).
func (d *decoder) decodeNATS(k, v *value) *supervisor.NATSSettings {
	s := &supervisor.NATSSettings{}
	nerrs := len(d.errs)
	var syncKey *value
	for i, sk := range v.keys {
		sv := v.vals[i]
		key := "nats." + sk.text
		if sv.kind == kindNull {
			continue
		}
		switch sk.text {
		case "url", "urls":
			if urls, ok := d.texts(sk, sv, key); ok {
				for _, u := range urls {
					// "nats://a:4222,nats://b:4222", as KIN_NATS_URL
					for _, f := range strings.FieldsFunc(u, func(r rune) bool { return r == ',' || r == ' ' }) {
						s.URLs = append(s.URLs, f)
					}
				}
			}
		case "user":
			d.text(sk, sv, key, &s.User)
		case "password":
			d.text(sk, sv, key, &s.Password)
		case "replicas":
			d.count(sk, sv, key, 1, 5, &s.Replicas)
		case "sync", "durability":
			if syncKey != nil {
				line, _ := d.at(syncKey, "nats."+syncKey.text)
				d.errorf(sk, key, "sets what %s on line %d sets: keep one", syncKey.text, line)
				continue
			}
			syncKey = sk
			switch sv.kind {
			case kindString:
				s.Sync = sv.text
			case kindNumber: // milliseconds, as durations elsewhere
				if dur, ok := d.duration(sk, sv, key); ok {
					s.Sync = dur.String()
				}
			default:
				d.errorf(sk, key, "want always or an interval such as 100ms, got %s", sv.describe())
			}
		case "host":
			d.text(sk, sv, key, &s.Host)
		case "port":
			d.count(sk, sv, key, 1, 65535, &s.Port)
		case "max_store":
			if n, ok := d.size(sk, sv, key); ok {
				s.MaxStore = n
			}
		case "cluster":
			if sv.kind != kindMap {
				d.errorf(sk, key, "want a mapping (name, listen, routes), got %s", sv.describe())
				continue
			}
			s.Cluster = d.decodeNATSCluster(sk, sv)
		default:
			d.unknownKey(sk, key, natsKeys)
		}
	}
	if len(d.errs) == nerrs {
		if err := s.Validate(); err != nil {
			d.errorf(k, "nats", "%v", strings.TrimPrefix(err.Error(), "nats: "))
		}
	}
	return s
}

func (d *decoder) decodeNATSCluster(k, v *value) *supervisor.NATSCluster {
	c := &supervisor.NATSCluster{}
	for i, sk := range v.keys {
		sv := v.vals[i]
		key := "nats.cluster." + sk.text
		if sv.kind == kindNull {
			continue
		}
		switch sk.text {
		case "name":
			d.text(sk, sv, key, &c.Name)
		case "listen":
			switch sv.kind {
			case kindNumber: // a port alone: on 127.0.0.1
				var p int
				if d.count(sk, sv, key, 1, 65535, &p) {
					c.Listen = fmt.Sprintf("127.0.0.1:%d", p)
				}
			default:
				d.text(sk, sv, key, &c.Listen)
			}
		case "routes":
			if r, ok := d.texts(sk, sv, key); ok {
				c.Routes = r
			}
		case "user":
			d.text(sk, sv, key, &c.User)
		case "password":
			d.text(sk, sv, key, &c.Password)
		default:
			d.unknownKey(sk, key, natsClusterKeys)
		}
	}
	if c.Listen == "" {
		d.errorf(k, "nats.cluster", "no listen: want the host:port this node takes routes on, e.g. 127.0.0.1:6222")
	}
	return c
}

// setQueue reads an app's queue: a queue's name, or a mapping.
func (d *decoder) setQueue(a *app, k, v *value) {
	key := a.key(k)
	q := &supervisor.QueueSpec{}
	switch v.kind {
	case kindString:
		q.Name = v.text
	case kindMap:
		for i, sk := range v.keys {
			sv := v.vals[i]
			skey := key + "." + sk.text
			if sv.kind == kindNull {
				continue
			}
			switch sk.text {
			case "name":
				d.text(sk, sv, skey, &q.Name)
			case "concurrency":
				d.count(sk, sv, skey, 1, 4096, &q.Concurrency)
			case "timeout":
				if dur, ok := d.duration(sk, sv, skey); ok {
					q.Timeout = dur
				}
			case "max_memory":
				if n, ok := d.size(sk, sv, skey); ok {
					q.MaxMemory = n
				}
			default:
				d.unknownKey(sk, skey, queueKeys)
			}
		}
	default:
		d.errorf(k, key, "want a mapping (name, concurrency, timeout, max_memory) or a queue's name, got %s", v.describe())
		return
	}
	if q.Name == "" {
		d.errorf(k, key, "no name: want the queue the app works on")
		return
	}
	if !supervisor.ValidQueueName(q.Name) {
		d.errorf(k, key, "name %q: want 1 to 64 of A–Z a–z 0–9 - _", q.Name)
		return
	}
	a.spec.Queue = q
}
