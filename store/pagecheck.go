package store

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/fnv"
	"io"
	"math/bits"
	"os"
)

// checkPages reads the bbolt file at path page by page, through its own file handle and
// without bbolt, and reports a *corruptError if bbolt could not safely walk it.
//
// bbolt trusts its file: it reads pages straight from the memory map by id, and its
// cursor and tx.Check recurse down the tree. A damaged page id then faults outside the
// mapping (a fatal signal, not a panic, unless the goroutine asked for
// debug.SetPanicOnFault; tx.Check runs in a goroutine of its own that does not), and a
// branch page that names itself recurses until the stack overflows, which nothing can
// recover. So before bbolt walks a file, this walks it with every offset bounds-checked
// and every page visited at most once: afterwards bbolt's reads stay inside the file and
// terminate. It checks what tx.Check checks (page types, references, key order, the free
// list, no page both in use and free, no page lost) and, as tx.Check does not, that
// every offset and length stays inside its page.
//
// The layout is bbolt's file format version 2 (go.etcd.io/bbolt/internal/common),
// unchanged since boltdb; it is written in the machine's byte order. The caller holds
// the file lock (a bbolt handle of its own), so no writer moves pages meanwhile.
// Measured: about 80 ms for a ledger of 100,000 entries, 123 MB (BenchmarkOpenChecks),
// nearly half of it in the one read per page.
func checkPages(path string) error { return checkFile(path, false) }

// checkHeader checks only what bbolt's read-only Open reads, the two header pages: that
// their page size is sane and the file holds both. Without the lock it may run while a
// writer commits, which rewrites a header page in place but never shrinks the file or
// changes its page size, so it cannot refuse a sound ledger.
func checkHeader(path string) error { return checkFile(path, true) }

func checkFile(path string, headerOnly bool) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return err
	}
	if !fi.Mode().IsRegular() {
		return fmt.Errorf("not a regular file (%v)", fi.Mode().Type())
	}
	c := &pageChecker{f: f, size: fi.Size(), headerOnly: headerOnly}
	return c.run()
}

// bbolt's on-disk layout.
const (
	pageHeaderSize  = 16 // id u64, flags u16, count u16, overflow u32
	pageElementSize = 16 // branch: pos u32, ksize u32, pgid u64; leaf: flags u32, pos u32, ksize u32, vsize u32
	metaSize        = 64 // magic, version, pageSize, flags u32; root, sequence, freelist, pgid, txid, checksum u64
	bucketHeader    = 16 // a bucket's value: root pgid u64, sequence u64, then the inline page if root is 0

	branchPageFlag   = 0x01
	leafPageFlag     = 0x02
	freelistPageFlag = 0x10
	bucketLeafFlag   = 0x01

	boltMagic   = 0xED0CDAED
	boltVersion = 2
	noFreelist  = ^uint64(0)

	// maxTreeDepth bounds the walk: a bbolt tree holding the whole address space of
	// keys is under 20 deep, counting nested buckets.
	maxTreeDepth = 64
)

var ne = binary.NativeEndian

type meta struct {
	magic, version, pageSize uint32
	root, freelist, pgid     uint64
	txid                     uint64
	valid                    bool
}

func parseMeta(b []byte) meta {
	if len(b) < pageHeaderSize+metaSize {
		return meta{}
	}
	m := b[pageHeaderSize : pageHeaderSize+metaSize]
	h := fnv.New64a()
	h.Write(m[:56])
	v := meta{
		magic: ne.Uint32(m[0:]), version: ne.Uint32(m[4:]), pageSize: ne.Uint32(m[8:]),
		root: ne.Uint64(m[16:]), freelist: ne.Uint64(m[32:]), pgid: ne.Uint64(m[40:]), txid: ne.Uint64(m[48:]),
	}
	v.valid = v.magic == boltMagic && v.version == boltVersion && ne.Uint64(m[56:]) == h.Sum64()
	return v
}

type pageChecker struct {
	f          *os.File
	size       int64
	headerOnly bool
	ps         uint64 // page size
	hwm        uint64 // high water mark: pages [0, hwm) are the database
	used       bitset // pages in the tree, the metas and the free list's own pages
	free       bitset // pages the free list names

	buf []byte // one page, reused
}

// read returns n bytes of the file from off, valid until the next read. (Reading
// ahead in chunks was tried and was slower: the pages of the four buckets interleave,
// since every write transaction touches them all.)
func (c *pageChecker) read(off int64, n int) ([]byte, error) {
	b := c.buf
	if n > len(b) {
		b = make([]byte, n)
	}
	_, err := c.f.ReadAt(b[:n], off)
	return b[:n], err
}

type bitset []uint64

func (b bitset) has(i uint64) bool { return b[i/64]&(1<<(i%64)) != 0 }
func (b bitset) set(i uint64)      { b[i/64] |= 1 << (i % 64) }

func corrupt(format string, args ...any) error {
	return &corruptError{reason: fmt.Sprintf(format, args...)}
}

// pageSize is the page size bbolt will use for the file, found as bbolt's getPageSize
// does: the first meta page's, else a valid meta page at one of the sizes bbolt tries,
// else the OS page size. It also returns the two meta pages at that size.
func (c *pageChecker) pageSize() (uint64, error) {
	var buf [0x1000]byte
	n, err := c.f.ReadAt(buf[:], 0)
	if err != nil && !errors.Is(err, io.EOF) {
		return 0, err
	}
	if n == len(buf) {
		if m := parseMeta(buf[:]); m.valid {
			return uint64(m.pageSize), nil
		}
		for i := range 15 {
			pos := int64(1024) << i
			if pos >= c.size-1024 {
				break
			}
			n, err := c.f.ReadAt(buf[:], pos)
			if err != nil && !errors.Is(err, io.EOF) {
				return 0, err
			}
			if n == len(buf) || (errors.Is(err, io.EOF) && int64(n) == c.size-pos) {
				if m := parseMeta(buf[:n]); m.valid {
					return uint64(m.pageSize), nil
				}
			}
		}
		return uint64(os.Getpagesize()), nil
	}
	return 0, corrupt("the file is too short to be a ledger (%d bytes)", c.size)
}

func (c *pageChecker) run() error {
	if c.size == 0 {
		return corrupt("the file is empty")
	}
	ps, err := c.pageSize()
	if err != nil {
		return err
	}
	if ps < 1024 || ps > 1<<24 || bits.OnesCount64(ps) != 1 {
		return corrupt("its header gives an impossible page size (%d)", ps)
	}
	if uint64(c.size) < 2*ps {
		return corrupt("the file is too short to be a ledger (%d bytes)", c.size)
	}
	if c.headerOnly {
		return nil
	}
	c.ps = ps
	var m0buf, m1buf [pageHeaderSize + metaSize]byte
	if _, err := c.f.ReadAt(m0buf[:], 0); err != nil {
		return err
	}
	if _, err := c.f.ReadAt(m1buf[:], int64(ps)); err != nil {
		return err
	}
	// bbolt uses the meta page with the higher transaction id if it is valid, else the
	// other (db.meta).
	a, b := parseMeta(m0buf[:]), parseMeta(m1buf[:])
	if b.txid > a.txid {
		a, b = b, a
	}
	m := a
	if !m.valid {
		m = b
	}
	switch {
	case !m.valid:
		return corrupt("it is not a bbolt database, or both of its header pages are damaged")
	case uint64(m.pageSize) != ps:
		return corrupt("its header pages disagree on the page size (%d and %d)", m.pageSize, ps)
	case m.pgid < 3 || m.pgid > uint64(c.size)/ps:
		return corrupt("it is %d bytes long but its header says it holds %d pages of %d bytes (truncated?)", c.size, m.pgid, ps)
	case m.root < 2 || m.root >= m.pgid:
		return corrupt("its header names root page %d, outside the file's %d pages", m.root, m.pgid)
	case m.freelist != noFreelist && (m.freelist < 2 || m.freelist >= m.pgid):
		return corrupt("its header names free-list page %d, outside the file's %d pages", m.freelist, m.pgid)
	}
	c.hwm = m.pgid
	c.buf = make([]byte, ps)
	c.used = make(bitset, (c.hwm+63)/64)
	c.free = make(bitset, (c.hwm+63)/64)
	c.used.set(0)
	c.used.set(1)
	if m.freelist != noFreelist {
		if err := c.freelist(m.freelist); err != nil {
			return err
		}
	}
	if err := c.tree(m.root); err != nil {
		return err
	}
	for id := uint64(2); id < c.hwm; id++ {
		if !c.used.has(id) && !c.free.has(id) {
			return corrupt("page %d is neither in use nor free", id)
		}
	}
	return nil
}

// page reads page id and its overflow pages, claiming them as used.
func (c *pageChecker) page(id uint64) ([]byte, error) {
	if id < 2 || id >= c.hwm {
		return nil, corrupt("a reference to page %d, outside the file's %d pages", id, c.hwm)
	}
	p, err := c.read(int64(id*c.ps), int(c.ps))
	if err != nil {
		return nil, err
	}
	if got := ne.Uint64(p); got != id {
		return nil, corrupt("page %d calls itself page %d", id, got)
	}
	overflow := uint64(ne.Uint32(p[12:]))
	if overflow >= c.hwm-id {
		return nil, corrupt("page %d runs past the end of the file (%d overflow pages)", id, overflow)
	}
	for i := id; i <= id+overflow; i++ {
		if c.used.has(i) {
			return nil, corrupt("page %d is referenced twice", i)
		}
		if c.free.has(i) {
			return nil, corrupt("page %d is in use and also in the free list", i)
		}
		c.used.set(i)
	}
	if overflow == 0 {
		return p, nil
	}
	return c.read(int64(id*c.ps), int((overflow+1)*c.ps))
}

func (c *pageChecker) freelist(id uint64) error {
	p, err := c.page(id)
	if err != nil {
		return err
	}
	if flags := ne.Uint16(p[8:]); flags != freelistPageFlag {
		return corrupt("free-list page %d has type %#x", id, flags)
	}
	start, count := uint64(pageHeaderSize), uint64(ne.Uint16(p[10:]))
	if count == 0xFFFF {
		// More ids than a uint16 counts: the first element holds the count.
		count = ne.Uint64(p[pageHeaderSize:])
		start += 8
	}
	if count > (uint64(len(p))-start)/8 {
		return corrupt("free-list page %d claims %d ids, more than it holds", id, count)
	}
	for i := range count {
		fid := ne.Uint64(p[start+8*i:])
		switch {
		case fid < 2 || fid >= c.hwm:
			return corrupt("the free list names page %d, outside the file's %d pages", fid, c.hwm)
		case c.free.has(fid):
			return corrupt("the free list names page %d twice", fid)
		case c.used.has(fid):
			return corrupt("the free list names page %d, which is in use", fid)
		}
		c.free.set(fid)
	}
	return nil
}

// pending is a page to visit with the key range its keys must fall in: [lo, hi), nil
// meaning unbounded.
type pending struct {
	id     uint64
	lo, hi []byte
	depth  int
}

// tree walks the bucket tree rooted at page root and every bucket nested in it, without
// recursion.
func (c *pageChecker) tree(root uint64) error {
	stack := []pending{{id: root}}
	for len(stack) > 0 {
		w := stack[len(stack)-1]
		stack = stack[:len(stack)-1]
		if w.depth > maxTreeDepth {
			return corrupt("page %d lies deeper than any ledger's tree", w.id)
		}
		p, err := c.page(w.id)
		if err != nil {
			return err
		}
		flags, count := ne.Uint16(p[8:]), int(ne.Uint16(p[10:]))
		var children []pending
		switch flags {
		case branchPageFlag:
			if count == 0 {
				return corrupt("branch page %d is empty", w.id)
			}
			keys, ids, err := branchElements(p, count, w.id)
			if err != nil {
				return err
			}
			if err := checkOrder(keys, w.lo, w.hi, w.id); err != nil {
				return err
			}
			for i := range keys {
				hi := w.hi
				if i+1 < len(keys) {
					hi = keys[i+1]
				}
				children = append(children, pending{id: ids[i], lo: keys[i], hi: hi, depth: w.depth + 1})
			}
		case leafPageFlag:
			buckets, err := leafElements(p, count, w.id, w.lo, w.hi, false)
			if err != nil {
				return err
			}
			for _, b := range buckets {
				children = append(children, pending{id: b, depth: w.depth + 1})
			}
		default:
			return corrupt("page %d has type %#x where a tree page belongs", w.id, flags)
		}
		// Copy what the next read overwrites.
		for i := range children {
			children[i].lo, children[i].hi = bytes.Clone(children[i].lo), bytes.Clone(children[i].hi)
		}
		for i := len(children) - 1; i >= 0; i-- {
			stack = append(stack, children[i])
		}
	}
	return nil
}

// elementRange checks that the element at index i of a page of length n, whose data
// starts pos bytes after the element and is length bytes long, lies inside the page.
func elementRange(n, i int, pos uint32, length uint64) (start, end int, ok bool) {
	s := uint64(pageHeaderSize+i*pageElementSize) + uint64(pos)
	e := s + length
	if e > uint64(n) {
		return 0, 0, false
	}
	return int(s), int(e), true
}

func branchElements(p []byte, count int, id uint64) (keys [][]byte, ids []uint64, err error) {
	if pageHeaderSize+count*pageElementSize > len(p) {
		return nil, nil, corrupt("page %d claims %d elements, more than it holds", id, count)
	}
	for i := range count {
		el := p[pageHeaderSize+i*pageElementSize:]
		s, e, ok := elementRange(len(p), i, ne.Uint32(el[0:]), uint64(ne.Uint32(el[4:])))
		if !ok {
			return nil, nil, corrupt("element %d of page %d points outside the page", i, id)
		}
		keys = append(keys, p[s:e])
		ids = append(ids, ne.Uint64(el[8:]))
	}
	return keys, ids, nil
}

// leafElements checks the elements of leaf page p (an inline bucket's page if inline)
// and returns the root pages of the buckets it holds; inline buckets are checked here.
func leafElements(p []byte, count int, id uint64, lo, hi []byte, inline bool) (buckets []uint64, err error) {
	where := pageName{id, inline}
	if pageHeaderSize+count*pageElementSize > len(p) {
		return nil, corrupt("%s claims %d elements, more than it holds", where, count)
	}
	keys := make([][]byte, 0, count)
	for i := range count {
		el := p[pageHeaderSize+i*pageElementSize:]
		flags, ksize, vsize := ne.Uint32(el[0:]), ne.Uint32(el[8:]), ne.Uint32(el[12:])
		s, e, ok := elementRange(len(p), i, ne.Uint32(el[4:]), uint64(ksize))
		var ve int
		if ok {
			_, ve, ok = elementRange(len(p), i, ne.Uint32(el[4:]), uint64(ksize)+uint64(vsize))
		}
		if !ok {
			return nil, corrupt("element %d of %s points outside the page", i, where)
		}
		keys = append(keys, p[s:e])
		switch flags {
		case 0:
		case bucketLeafFlag:
			if inline {
				// bbolt inlines only buckets without buckets of their own.
				return nil, corrupt("%s holds a bucket", where)
			}
			v := p[e:ve]
			if len(v) < bucketHeader {
				return nil, corrupt("bucket %q on page %d has a %d-byte header", p[s:e], id, len(v))
			}
			if root := ne.Uint64(v); root != 0 {
				buckets = append(buckets, root)
				continue
			}
			ip := v[bucketHeader:]
			if len(ip) < pageHeaderSize {
				return nil, corrupt("inline bucket %q on page %d is cut short", p[s:e], id)
			}
			if flags := ne.Uint16(ip[8:]); flags != leafPageFlag {
				return nil, corrupt("inline bucket %q on page %d has page type %#x", p[s:e], id, flags)
			}
			if _, err := leafElements(ip, int(ne.Uint16(ip[10:])), id, nil, nil, true); err != nil {
				return nil, err
			}
		default:
			return nil, corrupt("element %d of %s has unknown flags %#x", i, where, flags)
		}
	}
	if err := checkOrder(keys, lo, hi, id); err != nil {
		return nil, err
	}
	return buckets, nil
}

// pageName formats as where an element is, for errors: made only if one is reported.
type pageName struct {
	id     uint64
	inline bool
}

func (p pageName) String() string {
	if p.inline {
		return fmt.Sprintf("an inline bucket on page %d", p.id)
	}
	return fmt.Sprintf("page %d", p.id)
}

// checkOrder checks that keys ascend strictly and fall in [lo, hi), as tx.Check does.
func checkOrder(keys [][]byte, lo, hi []byte, id uint64) error {
	for i, k := range keys {
		if i == 0 && lo != nil && bytes.Compare(k, lo) < 0 || i > 0 && bytes.Compare(keys[i-1], k) >= 0 {
			return corrupt("the keys on page %d are out of order", id)
		}
		if hi != nil && bytes.Compare(k, hi) >= 0 {
			return corrupt("a key on page %d lies outside its parent's range", id)
		}
	}
	return nil
}
