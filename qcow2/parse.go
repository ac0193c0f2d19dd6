package qcow2

import (
	"fmt"
	"math"
	"math/big"
	"strconv"
	"strings"
)

// ParseSize parses a size as qemu-img does: plain bytes ("1000", "1000B")
// or a number with one of the suffixes K, M, G, T, P, E (powers of 1024,
// either case), optionally followed by "B" or "iB" ("64k", "1.5G",
// "10GiB"). A fraction needs a suffix and is rounded down to a byte. Sizes
// of 8 EiB or more are refused, and so are spaces, signs and hexadecimal.
func ParseSize(s string) (int64, error) {
	num := s
	unit := uint(0)
	trim := func(suffix string) bool {
		if len(num) > len(suffix) && strings.EqualFold(num[len(num)-len(suffix):], suffix) {
			num = num[:len(num)-len(suffix)]
			return true
		}
		return false
	}
	if !trim("iB") {
		trim("B")
	}
	if n := len(num); n > 0 {
		if i := strings.IndexByte("KMGTPE", upper(num[n-1])); i >= 0 {
			unit = uint(10 * (i + 1))
			num = num[:n-1]
		}
	}
	if num == "" || strings.Trim(num, "0123456789.") != "" || strings.Count(num, ".") > 1 {
		return 0, fmt.Errorf("qcow2: invalid size %q: want bytes or a number with K, M, G, T, P or E", s)
	}
	whole, frac, hasFrac := strings.Cut(num, ".")
	if whole == "" {
		return 0, fmt.Errorf("qcow2: invalid size %q: a number must start with a digit", s)
	}
	if hasFrac && unit == 0 {
		return 0, fmt.Errorf("qcow2: invalid size %q: a fraction needs a unit suffix", s)
	}
	r, ok := new(big.Rat).SetString(whole + "." + frac + "0")
	if !ok || whole == "" && frac == "" {
		return 0, fmt.Errorf("qcow2: invalid size %q: want bytes or a number with K, M, G, T, P or E", s)
	}
	r.Mul(r, new(big.Rat).SetInt(new(big.Int).Lsh(big.NewInt(1), unit)))
	v := new(big.Int).Quo(r.Num(), r.Denom())
	if !v.IsInt64() || v.Int64() == math.MaxInt64 {
		return 0, fmt.Errorf("qcow2: size %q: must be less than 8 EiB", s)
	}
	return v.Int64(), nil
}

func upper(c byte) byte {
	if 'a' <= c && c <= 'z' {
		return c - 'a' + 'A'
	}
	return c
}

// ParseOptions parses a qemu-img -o option list, such as
// "cluster_size=4k,lazy_refcounts=on,compat=1.1", into Options. A comma
// inside a value is written twice (",,") as in qemu-img. Keys are those of
// `qemu-img create -f qcow2 -o help` that this package supports: size,
// cluster_size, compat, lazy_refcounts, refcount_bits, extended_l2,
// compression_type, preallocation, backing_file, backing_fmt. Others are
// refused by name; the result is not validated (see [Options.Validate]).
func ParseOptions(list string) (Options, error) {
	var o Options
	for _, kv := range splitOpts(list) {
		if kv == "" {
			continue
		}
		k, v, ok := strings.Cut(kv, "=")
		if !ok {
			return o, fmt.Errorf("qcow2: option %q: want key=value", kv)
		}
		if err := o.Set(k, v); err != nil {
			return o, err
		}
	}
	return o, nil
}

// splitOpts splits at single commas; ",," stands for a comma.
func splitOpts(s string) []string {
	var out []string
	var cur strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == ',' {
			if i+1 < len(s) && s[i+1] == ',' {
				cur.WriteByte(',')
				i++
				continue
			}
			out = append(out, cur.String())
			cur.Reset()
			continue
		}
		cur.WriteByte(s[i])
	}
	return append(out, cur.String())
}

// Set sets the option named key (qemu-img's name) to value.
func (o *Options) Set(key, value string) error {
	var err error
	switch key {
	case "size":
		o.Size, err = ParseSize(value)
	case "cluster_size":
		var n int64
		n, err = ParseSize(value)
		if err == nil && n > math.MaxInt32 {
			err = fmt.Errorf("qcow2: cluster_size %s is too large", value)
		}
		o.ClusterSize = int(n)
	case "compat":
		o.Compat = value
	case "lazy_refcounts":
		o.LazyRefcounts, err = parseBool(key, value)
	case "refcount_bits":
		var n uint64
		n, err = strconv.ParseUint(value, 10, 8)
		if err != nil {
			err = fmt.Errorf("qcow2: refcount_bits %q: want a power of two from 1 to 64", value)
		}
		o.RefcountBits = int(n)
	case "extended_l2":
		o.ExtendedL2, err = parseBool(key, value)
	case "compression_type":
		o.CompressionType = value
	case "preallocation":
		o.Preallocation = value
	case "backing_file":
		o.BackingFile = value
	case "backing_fmt":
		o.BackingFormat = value
	case "encryption", "encrypt.format", "data_file", "data_file_raw", "nocow":
		return fmt.Errorf("qcow2: option %s is not supported", key)
	default:
		return fmt.Errorf("qcow2: unknown option %q", key)
	}
	return err
}

func parseBool(key, v string) (bool, error) {
	switch v {
	case "on", "yes", "true", "y":
		return true, nil
	case "off", "no", "false", "n":
		return false, nil
	}
	return false, fmt.Errorf("qcow2: %s=%q: want on or off", key, v)
}
