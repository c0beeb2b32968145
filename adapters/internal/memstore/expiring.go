package memstore

import "time"

// expiring is a map whose entries carry an expiry time. Expired entries are
// swept when the map has doubled since the last sweep, which keeps its size
// within twice the live entries (plus minPrune) at amortized constant cost.
// It is not safe for concurrent use.
type expiring struct {
	m       map[string]entry
	sweepAt int
}

type entry struct {
	value   string
	expires time.Time
}

func newExpiring() expiring {
	return expiring{m: make(map[string]entry), sweepAt: minPrune}
}

// get returns the live value of key at now.
func (e *expiring) get(key string, now time.Time) (string, bool) {
	en, ok := e.m[key]
	if !ok || !now.Before(en.expires) {
		return "", false
	}
	return en.value, true
}

// take removes key and returns its entry, live or expired.
func (e *expiring) take(key string) (entry, bool) {
	en, ok := e.m[key]
	delete(e.m, key)
	return en, ok
}

// put stores value under key until expires, sweeping expired entries first
// when the map has grown enough.
func (e *expiring) put(key, value string, expires, now time.Time) {
	if len(e.m) >= e.sweepAt {
		for k, en := range e.m {
			if !now.Before(en.expires) {
				delete(e.m, k)
			}
		}
		e.sweepAt = max(2*len(e.m), minPrune)
	}
	e.m[key] = entry{value: value, expires: expires}
}

// set replaces the value of key's live entry (at now), keeping its expiry;
// it reports whether there was such an entry.
func (e *expiring) set(key, value string, now time.Time) bool {
	en, ok := e.m[key]
	if !ok || !now.Before(en.expires) {
		return false
	}
	en.value = value
	e.m[key] = en
	return true
}

// takeBy removes and returns the keys of the live entries (at now) that
// expire at or before by and whose value skip does not keep, and drops the
// expired entries on the way.
func (e *expiring) takeBy(by, now time.Time, skip func(value string) bool) []string {
	var keys []string
	for k, en := range e.m {
		switch {
		case !now.Before(en.expires):
			delete(e.m, k)
		case !en.expires.After(by) && !skip(en.value):
			keys = append(keys, k)
			delete(e.m, k)
		}
	}
	return keys
}

// len returns the number of entries, expired ones included.
func (e *expiring) len() int { return len(e.m) }
