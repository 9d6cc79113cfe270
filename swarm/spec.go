package swarm

import (
	"fmt"
	"strconv"
	"strings"
	"time"
)

// ParsePartitions reads partitions written AT:FOR[:FRACTION], separated by commas: AT
// is when, as the share of the messages sent (0.3 or 30%); FOR how long, as a Go
// duration; FRACTION the share of the peers cut off (default 0.5). "0.3:5s" cuts half of
// the swarm off from the other half for five seconds once 30% of the messages are out.
func ParsePartitions(spec string) ([]Partition, error) {
	var out []Partition
	for item := range strings.SplitSeq(spec, ",") {
		item = strings.TrimSpace(item)
		if item == "" {
			continue
		}
		f := strings.Split(item, ":")
		if len(f) < 2 || len(f) > 3 {
			return nil, fmt.Errorf("swarm: partition %q: want AT:FOR[:FRACTION]", item)
		}
		p := Partition{Fraction: 0.5}
		var err error
		if p.At, err = parseShare(f[0]); err != nil {
			return nil, fmt.Errorf("swarm: partition %q: %w", item, err)
		}
		if p.For, err = time.ParseDuration(f[1]); err != nil || p.For <= 0 {
			return nil, fmt.Errorf("swarm: partition %q: bad duration %q", item, f[1])
		}
		if len(f) == 3 {
			if p.Fraction, err = parseShare(f[2]); err != nil || p.Fraction <= 0 || p.Fraction >= 1 {
				return nil, fmt.Errorf("swarm: partition %q: the fraction cut off must be in (0, 1)", item)
			}
		}
		out = append(out, p)
	}
	return out, nil
}

// parseShare reads 0.3 or 30% as 0.3.
func parseShare(s string) (float64, error) {
	pct := strings.HasSuffix(s, "%")
	v, err := strconv.ParseFloat(strings.TrimSuffix(s, "%"), 64)
	if err != nil {
		return 0, fmt.Errorf("bad share %q", s)
	}
	if pct {
		v /= 100
	}
	if v < 0 || v > 1 {
		return 0, fmt.Errorf("share %q not between 0 and 1", s)
	}
	return v, nil
}
