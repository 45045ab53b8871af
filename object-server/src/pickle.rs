//! Python pickles, the small part of them Swift's on-disk and wire formats
//! use: object metadata (protocol 2), `hashes.pkl` (protocol 2), the body
//! of REPLICATE (protocol 2) and async pendings (protocol 0).
//!
//! # Reading
//!
//! [`load`] decodes with the `serde-pickle` crate, after a first pass over
//! the opcodes ([`check`]) that refuses what Swift's formats never contain
//! and what could hurt us: opcodes outside the list below, globals other
//! than the ones Swift's own `RestrictedUnpickler` allows
//! (swift/common/utils/pickle.py), nesting deeper than [`MAX_DEPTH`], and
//! memo references that would expand a small input into a huge value
//! (more than [`MAX_WEIGHT`]). Bad input is an error, never a panic, a
//! stack overflow or an allocation out of proportion to the input.
//!
//! # Writing
//!
//! [`Pickler`] writes what CPython's C pickler writes for the same objects,
//! byte for byte, so that tests can compare our bytes with Swift's: the
//! same opcodes, the same dict and list batching (1000 items), and the same
//! memo (`BINPUT`/`PUT` after every memoised object, `BINGET`/`GET` when
//! CPython would meet the very same object again: a global, the `'latin1'`
//! constant, and the one-character strings and one-byte `bytes` that CPython
//! keeps as singletons). `serde-pickle`'s own writer produces valid but
//! different bytes (no memo, other batching), which is why we do not use it.

use std::collections::HashMap;

/// A Python object of the kinds Swift's pickles hold.
#[derive(Debug, Clone, PartialEq)]
pub enum Obj {
    None,
    Bool(bool),
    Int(i64),
    Float(f64),
    /// Python 3 `str` (Python 2 `unicode`).
    Str(String),
    /// Python 3 `bytes` (Python 2 `str`).
    Bytes(Vec<u8>),
    List(Vec<Obj>),
    Tuple(Vec<Obj>),
    /// A `dict`, in the order it is written. Decoded dicts come back in
    /// sorted key order (the decoder does not keep Python's order).
    Dict(Vec<(Obj, Obj)>),
    /// `swift.common.header_key_dict.HeaderKeyDict`, the dict subclass of
    /// an async pending's headers. Only written: it decodes as a `Dict`.
    HeaderKeyDict(Vec<(Obj, Obj)>),
}

impl Obj {
    /// The object as a `str`, if it is one.
    pub fn as_str(&self) -> Option<&str> {
        match self {
            Obj::Str(s) => Some(s),
            _ => None,
        }
    }
}

/// Deepest nesting of containers [`load`] accepts (Swift's formats need 3).
pub const MAX_DEPTH: u32 = 32;
/// Largest decoded size [`load`] accepts, in rough bytes: every object
/// counts [`NODE_WEIGHT`], strings their length on top. Memo references
/// count again each time they are used, so a pickle cannot expand a few
/// kilobytes into gigabytes.
pub const MAX_WEIGHT: u64 = 64 << 20;
const NODE_WEIGHT: u64 = 48;
/// Most `MARK`s open at once (the decoder reserves room for each).
const MAX_OPEN_MARKS: usize = 64;
/// Longest text line of `INT`, `LONG`, `FLOAT`, `GET` and `PUT`.
const MAX_NUMBER_LINE: usize = 64;
/// Longest binary integer (`LONG1`, `LONG4`) in bytes.
const MAX_LONG_BYTES: usize = 16;

/// Globals a pickle may name: exactly those Swift's `RestrictedUnpickler`
/// allows.
const ALLOWED_GLOBALS: [(&str, &str); 8] = [
    ("_codecs", "encode"),
    ("copy_reg", "_reconstructor"),
    ("copyreg", "_reconstructor"),
    ("swift.common.header_key_dict", "HeaderKeyDict"),
    ("builtins", "dict"),
    ("__builtin__", "dict"),
    ("builtins", "bytes"),
    ("__builtin__", "bytes"),
];

mod op {
    pub const MARK: u8 = b'(';
    pub const STOP: u8 = b'.';
    pub const POP: u8 = b'0';
    pub const POP_MARK: u8 = b'1';
    pub const DUP: u8 = b'2';
    pub const FLOAT: u8 = b'F';
    pub const INT: u8 = b'I';
    pub const BININT: u8 = b'J';
    pub const BININT1: u8 = b'K';
    pub const LONG: u8 = b'L';
    pub const BININT2: u8 = b'M';
    pub const NONE: u8 = b'N';
    pub const REDUCE: u8 = b'R';
    pub const STRING: u8 = b'S';
    pub const BINSTRING: u8 = b'T';
    pub const SHORT_BINSTRING: u8 = b'U';
    pub const UNICODE: u8 = b'V';
    pub const BINUNICODE: u8 = b'X';
    pub const APPEND: u8 = b'a';
    pub const BUILD: u8 = b'b';
    pub const GLOBAL: u8 = b'c';
    pub const DICT: u8 = b'd';
    pub const EMPTY_DICT: u8 = b'}';
    pub const APPENDS: u8 = b'e';
    pub const GET: u8 = b'g';
    pub const BINGET: u8 = b'h';
    pub const LONG_BINGET: u8 = b'j';
    pub const LIST: u8 = b'l';
    pub const EMPTY_LIST: u8 = b']';
    pub const PUT: u8 = b'p';
    pub const BINPUT: u8 = b'q';
    pub const LONG_BINPUT: u8 = b'r';
    pub const SETITEM: u8 = b's';
    pub const TUPLE: u8 = b't';
    pub const EMPTY_TUPLE: u8 = b')';
    pub const SETITEMS: u8 = b'u';
    pub const BINFLOAT: u8 = b'G';
    pub const PROTO: u8 = 0x80;
    pub const NEWOBJ: u8 = 0x81;
    pub const TUPLE1: u8 = 0x85;
    pub const TUPLE2: u8 = 0x86;
    pub const TUPLE3: u8 = 0x87;
    pub const NEWTRUE: u8 = 0x88;
    pub const NEWFALSE: u8 = 0x89;
    pub const LONG1: u8 = 0x8a;
    pub const LONG4: u8 = 0x8b;
    pub const BINBYTES: u8 = b'B';
    pub const SHORT_BINBYTES: u8 = b'C';
    pub const SHORT_BINUNICODE: u8 = 0x8c;
    pub const BINUNICODE8: u8 = 0x8d;
    pub const BINBYTES8: u8 = 0x8e;
    pub const MEMOIZE: u8 = 0x94;
    pub const FRAME: u8 = 0x95;
}

/// The shape of one stack item during [`check`].
#[derive(Debug, Clone, Copy)]
struct Shape {
    depth: u32,
    weight: u64,
    /// A dict, list or tuple. A memo entry keeps the shape the item had
    /// when memoised, and CPython memoises a container before filling it,
    /// so fetching a container from the memo could hide any size or depth
    /// behind an empty one (and a decoder that copies shared references
    /// would blow it up). Swift's formats share only strings and globals:
    /// fetching a container is refused.
    container: bool,
}

impl Shape {
    fn leaf(len: usize) -> Shape {
        Shape { depth: 1, weight: NODE_WEIGHT + len as u64, container: false }
    }

    fn empty_container() -> Shape {
        Shape { container: true, ..Shape::leaf(0) }
    }

    fn wrap(items: &[Shape]) -> Shape {
        let depth = 1 + items.iter().map(|s| s.depth).max().unwrap_or(0);
        let weight = items.iter().fold(NODE_WEIGHT, |w, s| w.saturating_add(s.weight));
        Shape { depth, weight, container: true }
    }

    fn add(self, items: &[Shape]) -> Shape {
        let inner = Shape::wrap(items);
        Shape {
            depth: self.depth.max(inner.depth),
            weight: self.weight.saturating_add(inner.weight - NODE_WEIGHT),
            container: self.container,
        }
    }
}

struct Scan<'a> {
    data: &'a [u8],
    pos: usize,
    stack: Vec<Shape>,
    marks: Vec<usize>,
    memo: HashMap<u64, Shape>,
}

impl<'a> Scan<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], String> {
        if self.data.len() - self.pos < n {
            return Err(format!("pickle truncated at byte {}", self.pos));
        }
        let s = &self.data[self.pos..self.pos + n];
        self.pos += n;
        Ok(s)
    }

    fn len_prefix(&mut self, width: usize) -> Result<usize, String> {
        let raw = self.take(width)?;
        let mut n: u64 = 0;
        for (i, b) in raw.iter().enumerate() {
            n |= (*b as u64) << (8 * i);
        }
        // Checked against what is left, so a huge prefix never allocates.
        usize::try_from(n).ok().filter(|&n| n <= self.data.len() - self.pos).ok_or_else(|| format!("length {n} past the end of the pickle"))
    }

    fn line(&mut self, max: usize) -> Result<&'a [u8], String> {
        let rest = &self.data[self.pos..];
        let end = rest.iter().position(|&b| b == b'\n').ok_or("pickle line without newline")?;
        if end > max {
            return Err("pickle line too long".into());
        }
        self.pos += end + 1;
        Ok(&rest[..end])
    }

    fn push(&mut self, s: Shape) -> Result<(), String> {
        if s.depth > MAX_DEPTH {
            return Err("pickle nested too deeply".into());
        }
        if s.weight > MAX_WEIGHT {
            return Err("pickle expands too much".into());
        }
        self.stack.push(s);
        Ok(())
    }

    fn pop(&mut self) -> Result<Shape, String> {
        if self.stack.len() <= self.marks.last().copied().unwrap_or(0) {
            return Err("pickle stack underflow".into());
        }
        self.stack.pop().ok_or_else(|| "pickle stack underflow".into())
    }

    fn pop_mark(&mut self) -> Result<Vec<Shape>, String> {
        let m = self.marks.pop().ok_or("pickle has no MARK to pop")?;
        Ok(self.stack.split_off(m))
    }

    fn top_add(&mut self, items: &[Shape]) -> Result<(), String> {
        let top = self.pop()?;
        self.push(top.add(items))
    }

    fn memo_index(&mut self, code: u8) -> Result<u64, String> {
        Ok(match code {
            op::BINGET | op::BINPUT => self.take(1)?[0] as u64,
            op::LONG_BINGET | op::LONG_BINPUT => u32::from_le_bytes(self.take(4)?.try_into().map_err(|_| "short index")?) as u64,
            _ => {
                let l = self.line(MAX_NUMBER_LINE)?;
                std::str::from_utf8(l).ok().and_then(|s| s.trim().parse().ok()).ok_or("bad memo index")?
            }
        })
    }
}

/// Checks that `data` is a pickle of the kind Swift's formats hold (see the
/// module docs) and returns its length up to and including `STOP`; what
/// follows `STOP` is ignored, as Python's `pickle.loads` ignores it.
pub fn check(data: &[u8]) -> Result<usize, String> {
    let mut s = Scan { data, pos: 0, stack: Vec::new(), marks: Vec::new(), memo: HashMap::new() };
    loop {
        let code = s.take(1)?[0];
        match code {
            op::STOP => {
                return if s.stack.len() == 1 && s.marks.is_empty() {
                    Ok(s.pos)
                } else {
                    Err("pickle does not end with one object".into())
                };
            }
            op::PROTO => {
                let v = s.take(1)?[0];
                if v > 5 {
                    return Err(format!("unsupported pickle protocol {v}"));
                }
            }
            op::FRAME => {
                s.take(8)?;
            }
            op::MARK => {
                if s.marks.len() >= MAX_OPEN_MARKS {
                    return Err("pickle opens too many MARKs".into());
                }
                s.marks.push(s.stack.len());
            }
            op::POP => {
                if s.stack.len() > s.marks.last().copied().unwrap_or(0) {
                    s.pop()?;
                } else {
                    s.pop_mark()?;
                }
            }
            op::POP_MARK => {
                s.pop_mark()?;
            }
            op::DUP => {
                let top = s.pop()?;
                s.push(top)?;
                s.push(top)?;
            }
            op::NONE | op::NEWTRUE | op::NEWFALSE => s.push(Shape::leaf(0))?,
            op::EMPTY_DICT | op::EMPTY_LIST | op::EMPTY_TUPLE => s.push(Shape::empty_container())?,
            op::INT | op::LONG | op::FLOAT => {
                s.line(MAX_NUMBER_LINE)?;
                s.push(Shape::leaf(0))?;
            }
            op::BININT => {
                s.take(4)?;
                s.push(Shape::leaf(0))?;
            }
            op::BININT1 => {
                s.take(1)?;
                s.push(Shape::leaf(0))?;
            }
            op::BININT2 => {
                s.take(2)?;
                s.push(Shape::leaf(0))?;
            }
            op::BINFLOAT => {
                s.take(8)?;
                s.push(Shape::leaf(0))?;
            }
            op::LONG1 | op::LONG4 => {
                let n = s.len_prefix(if code == op::LONG1 { 1 } else { 4 })?;
                if n > MAX_LONG_BYTES {
                    return Err("pickle integer too large".into());
                }
                s.take(n)?;
                s.push(Shape::leaf(0))?;
            }
            op::STRING | op::UNICODE => {
                let l = s.line(usize::MAX)?;
                s.push(Shape::leaf(l.len()))?;
            }
            op::SHORT_BINSTRING | op::SHORT_BINBYTES | op::SHORT_BINUNICODE => {
                let n = s.len_prefix(1)?;
                s.take(n)?;
                s.push(Shape::leaf(n))?;
            }
            op::BINSTRING | op::BINUNICODE | op::BINBYTES => {
                let n = s.len_prefix(4)?;
                s.take(n)?;
                s.push(Shape::leaf(n))?;
            }
            op::BINUNICODE8 | op::BINBYTES8 => {
                let n = s.len_prefix(8)?;
                s.take(n)?;
                s.push(Shape::leaf(n))?;
            }
            op::GLOBAL => {
                let module = s.line(256)?;
                let name = s.line(256)?;
                if !ALLOWED_GLOBALS.iter().any(|(m, n)| m.as_bytes() == module && n.as_bytes() == name) {
                    return Err(format!("global '{}.{}' is forbidden", String::from_utf8_lossy(module), String::from_utf8_lossy(name)));
                }
                s.push(Shape::leaf(0))?;
            }
            op::DICT | op::LIST | op::TUPLE => {
                let items = s.pop_mark()?;
                s.push(Shape::wrap(&items))?;
            }
            op::TUPLE1 | op::TUPLE2 | op::TUPLE3 => {
                let n = (code - op::TUPLE1 + 1) as usize;
                let mut items = Vec::with_capacity(n);
                for _ in 0..n {
                    items.push(s.pop()?);
                }
                s.push(Shape::wrap(&items))?;
            }
            op::APPEND => {
                let v = s.pop()?;
                s.top_add(&[v])?;
            }
            op::SETITEM => {
                let v = s.pop()?;
                let k = s.pop()?;
                s.top_add(&[k, v])?;
            }
            op::APPENDS | op::SETITEMS => {
                let items = s.pop_mark()?;
                s.top_add(&items)?;
            }
            op::REDUCE | op::BUILD | op::NEWOBJ => {
                let arg = s.pop()?;
                s.top_add(&[arg])?;
            }
            op::PUT | op::BINPUT | op::LONG_BINPUT => {
                let i = s.memo_index(code)?;
                let top = *s.stack.last().ok_or("PUT on an empty stack")?;
                s.memo.insert(i, top);
            }
            op::MEMOIZE => {
                let top = *s.stack.last().ok_or("MEMOIZE on an empty stack")?;
                let i = s.memo.len() as u64;
                s.memo.insert(i, top);
            }
            op::GET | op::BINGET | op::LONG_BINGET => {
                let i = s.memo_index(code)?;
                let v = *s.memo.get(&i).ok_or_else(|| format!("memo entry {i} not found"))?;
                if v.container {
                    return Err(format!("memo entry {i} is a container: shared containers are refused"));
                }
                s.push(v)?;
            }
            other => return Err(format!("unsupported pickle opcode 0x{other:02x} at byte {}", s.pos - 1)),
        }
    }
}

/// How [`load`] treats globals that are not plain data.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Globals {
    /// `bytes()` (py3 protocol 2's empty bytes) decodes as `None`.
    Plain,
    /// `copy_reg._reconstructor(HeaderKeyDict, dict, {...})` decodes as
    /// its dict (async pendings); `bytes()` then decodes as an empty tuple.
    Reconstruct,
}

/// Decodes one pickle (see the module docs for what is refused).
pub fn load(data: &[u8], globals: Globals) -> Result<Obj, String> {
    let end = check(data)?;
    let mut options = serde_pickle::DeOptions::new().replace_unresolved_globals();
    if globals == Globals::Reconstruct {
        options = options.keep_restore_state();
    }
    let value = serde_pickle::value_from_slice(&data[..end], options).map_err(|e| e.to_string())?;
    from_value(value)
}

fn from_value(v: serde_pickle::Value) -> Result<Obj, String> {
    use serde_pickle::Value as V;
    Ok(match v {
        V::None => Obj::None,
        V::Bool(b) => Obj::Bool(b),
        V::I64(i) => Obj::Int(i),
        V::Int(i) => Obj::Int(i.to_string().parse().map_err(|_| "integer out of range")?),
        V::F64(f) => Obj::Float(f),
        V::Bytes(b) => Obj::Bytes(b),
        V::String(s) => Obj::Str(s),
        V::List(l) => Obj::List(l.into_iter().map(from_value).collect::<Result<_, _>>()?),
        V::Tuple(t) => Obj::Tuple(t.into_iter().map(from_value).collect::<Result<_, _>>()?),
        V::Set(_) | V::FrozenSet(_) => return Err("unexpected set in pickle".into()),
        V::Dict(d) => {
            Obj::Dict(d.into_iter().map(|(k, v)| Ok((from_value(k.into_value())?, from_value(v)?))).collect::<Result<_, String>>()?)
        }
    })
}

/// What CPython's pickler finds in its memo when it meets an object again.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum Shared {
    Global(&'static str, &'static str),
    /// The `'latin1'` constant of `bytes` pickled for protocol < 3.
    Latin1,
    /// One-character (latin-1) or empty `str`: CPython singletons.
    Str(String),
    /// One-byte or empty `bytes`: CPython singletons.
    Bytes(Vec<u8>),
}

/// Writes pickles as CPython's C pickler does (see the module docs).
pub struct Pickler {
    out: Vec<u8>,
    proto: u8,
    next_memo: u32,
    shared: HashMap<Shared, u32>,
}

impl Pickler {
    /// Pickles `obj` with `proto` (0 or 2; Swift uses no other).
    pub fn dumps(obj: &Obj, proto: u8) -> Vec<u8> {
        let mut p = Pickler { out: Vec::new(), proto, next_memo: 0, shared: HashMap::new() };
        if proto >= 2 {
            p.out.extend_from_slice(&[op::PROTO, proto]);
        }
        p.save(obj);
        p.out.push(op::STOP);
        p.out
    }

    fn put(&mut self) -> u32 {
        let i = self.next_memo;
        self.next_memo += 1;
        if self.proto == 0 {
            self.out.push(op::PUT);
            self.out.extend_from_slice(format!("{i}\n").as_bytes());
        } else if i < 256 {
            self.out.extend_from_slice(&[op::BINPUT, i as u8]);
        } else {
            self.out.push(op::LONG_BINPUT);
            self.out.extend_from_slice(&i.to_le_bytes());
        }
        i
    }

    fn get(&mut self, i: u32) {
        if self.proto == 0 {
            self.out.push(op::GET);
            self.out.extend_from_slice(format!("{i}\n").as_bytes());
        } else if i < 256 {
            self.out.extend_from_slice(&[op::BINGET, i as u8]);
        } else {
            self.out.push(op::LONG_BINGET);
            self.out.extend_from_slice(&i.to_le_bytes());
        }
    }

    /// Fetches a shared object already in the memo; true when done.
    fn reuse(&mut self, key: &Shared) -> bool {
        match self.shared.get(key) {
            Some(&i) => {
                self.get(i);
                true
            }
            None => false,
        }
    }

    fn global(&mut self, module: &'static str, name: &'static str) {
        let key = Shared::Global(module, name);
        if self.reuse(&key) {
            return;
        }
        self.out.push(op::GLOBAL);
        self.out.extend_from_slice(format!("{module}\n{name}\n").as_bytes());
        let i = self.put();
        self.shared.insert(key, i);
    }

    fn save(&mut self, obj: &Obj) {
        match obj {
            Obj::None => self.out.push(op::NONE),
            Obj::Bool(b) => match (self.proto, b) {
                (0, true) => self.out.extend_from_slice(b"I01\n"),
                (0, false) => self.out.extend_from_slice(b"I00\n"),
                (_, true) => self.out.push(op::NEWTRUE),
                (_, false) => self.out.push(op::NEWFALSE),
            },
            Obj::Int(i) => self.int(*i),
            Obj::Float(f) => {
                if self.proto == 0 {
                    // Python writes repr(f); Rust's shortest form reads back
                    // to the same float (exponents are spelled differently).
                    self.out.extend_from_slice(format!("F{f:?}\n").as_bytes());
                } else {
                    self.out.push(op::BINFLOAT);
                    self.out.extend_from_slice(&f.to_be_bytes());
                }
            }
            Obj::Str(s) => self.str(s, None),
            Obj::Bytes(b) => self.bytes(b),
            Obj::List(items) => self.list(items),
            Obj::Tuple(items) => self.tuple(items),
            Obj::Dict(items) => self.dict(items),
            Obj::HeaderKeyDict(items) => {
                // dict subclasses reduce to
                // copy_reg._reconstructor(cls, dict, dict(self)).
                self.global("copy_reg", "_reconstructor");
                self.out.push(op::MARK);
                self.global("swift.common.header_key_dict", "HeaderKeyDict");
                self.global("__builtin__", "dict");
                self.dict(items);
                self.out.push(op::TUPLE);
                self.put();
                self.out.push(op::REDUCE);
                self.put();
            }
        }
    }

    fn int(&mut self, i: i64) {
        if self.proto == 0 {
            if i32::try_from(i).is_ok() {
                self.out.extend_from_slice(format!("I{i}\n").as_bytes());
            } else {
                self.out.extend_from_slice(format!("L{i}L\n").as_bytes());
            }
        } else if (0..=0xff).contains(&i) {
            self.out.extend_from_slice(&[op::BININT1, i as u8]);
        } else if (0..=0xffff).contains(&i) {
            self.out.push(op::BININT2);
            self.out.extend_from_slice(&(i as u16).to_le_bytes());
        } else if let Ok(v) = i32::try_from(i) {
            self.out.push(op::BININT);
            self.out.extend_from_slice(&v.to_le_bytes());
        } else {
            // Two's complement, little-endian, as few bytes as keep the sign.
            let mut bytes = i.to_le_bytes().to_vec();
            while bytes.len() > 1 {
                let last = bytes[bytes.len() - 1];
                let prev_sign = bytes[bytes.len() - 2] & 0x80;
                if (last == 0 && prev_sign == 0) || (last == 0xff && prev_sign != 0) {
                    bytes.pop();
                } else {
                    break;
                }
            }
            self.out.extend_from_slice(&[op::LONG1, bytes.len() as u8]);
            self.out.extend_from_slice(&bytes);
        }
    }

    /// A `str`; `shared` names the memo slot of a constant such as
    /// `'latin1'`.
    fn str(&mut self, s: &str, shared: Option<Shared>) {
        let singleton = s.chars().count() <= 1 && s.chars().all(|c| (c as u32) < 256);
        let key = shared.or_else(|| singleton.then(|| Shared::Str(s.to_string())));
        if let Some(k) = &key {
            if self.reuse(k) {
                return;
            }
        }
        if self.proto == 0 {
            self.out.push(op::UNICODE);
            raw_unicode_escape(s, &mut self.out);
            self.out.push(b'\n');
        } else {
            self.out.push(op::BINUNICODE);
            self.out.extend_from_slice(&(s.len() as u32).to_le_bytes());
            self.out.extend_from_slice(s.as_bytes());
        }
        let i = self.put();
        if let Some(k) = key {
            self.shared.insert(k, i);
        }
    }

    /// `bytes` for protocols below 3: `_codecs.encode(<latin-1 text>,
    /// 'latin1')`, or `bytes()` when empty.
    fn bytes(&mut self, b: &[u8]) {
        let key = Shared::Bytes(b.to_vec());
        let singleton = b.len() <= 1;
        if singleton && self.reuse(&key) {
            return;
        }
        if b.is_empty() {
            self.global("__builtin__", "bytes");
            self.out.push(if self.proto == 0 { op::MARK } else { op::EMPTY_TUPLE });
            if self.proto == 0 {
                self.out.push(op::TUPLE);
            }
        } else {
            self.global("_codecs", "encode");
            let text: String = b.iter().map(|&c| c as char).collect();
            if self.proto == 0 {
                self.out.push(op::MARK);
            }
            self.str(&text, None);
            self.str("latin1", Some(Shared::Latin1));
            if self.proto == 0 {
                self.out.push(op::TUPLE);
            } else {
                self.out.push(op::TUPLE2);
            }
            self.put();
        }
        self.out.push(op::REDUCE);
        let i = self.put();
        if singleton {
            self.shared.insert(key, i);
        }
    }

    fn list(&mut self, items: &[Obj]) {
        if self.proto == 0 {
            self.out.extend_from_slice(&[op::MARK, op::LIST]);
            self.put();
            for item in items {
                self.save(item);
                self.out.push(op::APPEND);
            }
            return;
        }
        self.out.push(op::EMPTY_LIST);
        self.put();
        match items.len() {
            0 => {}
            1 => {
                self.save(&items[0]);
                self.out.push(op::APPEND);
            }
            _ => {
                for chunk in items.chunks(1000) {
                    self.out.push(op::MARK);
                    for item in chunk {
                        self.save(item);
                    }
                    self.out.push(op::APPENDS);
                }
            }
        }
    }

    fn tuple(&mut self, items: &[Obj]) {
        if items.is_empty() {
            if self.proto == 0 {
                self.out.extend_from_slice(&[op::MARK, op::TUPLE]);
            } else {
                self.out.push(op::EMPTY_TUPLE);
            }
            return;
        }
        if self.proto >= 2 && items.len() <= 3 {
            for item in items {
                self.save(item);
            }
            self.out.push(op::TUPLE1 + items.len() as u8 - 1);
        } else {
            self.out.push(op::MARK);
            for item in items {
                self.save(item);
            }
            self.out.push(op::TUPLE);
        }
        self.put();
    }

    fn dict(&mut self, items: &[(Obj, Obj)]) {
        if self.proto == 0 {
            self.out.extend_from_slice(&[op::MARK, op::DICT]);
            self.put();
            for (k, v) in items {
                self.save(k);
                self.save(v);
                self.out.push(op::SETITEM);
            }
            return;
        }
        self.out.push(op::EMPTY_DICT);
        self.put();
        match items.len() {
            0 => {}
            1 => {
                self.save(&items[0].0);
                self.save(&items[0].1);
                self.out.push(op::SETITEM);
            }
            n => {
                // CPython's batch loop: a length that is a multiple of 1000
                // ends with an empty MARK/SETITEMS pair.
                let mut done = 0;
                loop {
                    self.out.push(op::MARK);
                    let batch = &items[done..(done + 1000).min(n)];
                    for (k, v) in batch {
                        self.save(k);
                        self.save(v);
                    }
                    self.out.push(op::SETITEMS);
                    done += batch.len();
                    if batch.len() < 1000 {
                        break;
                    }
                }
            }
        }
    }
}

/// Python's pickle flavour of "raw-unicode-escape" for protocol 0 `str`:
/// latin-1 bytes as they are, `\uXXXX`/`\UXXXXXXXX` for the rest and for
/// the characters that would break the line.
fn raw_unicode_escape(s: &str, out: &mut Vec<u8>) {
    for c in s.chars() {
        let n = c as u32;
        if n >= 0x10000 {
            out.extend_from_slice(format!("\\U{n:08x}").as_bytes());
        } else if n >= 256 || matches!(c, '\\' | '\0' | '\n' | '\r' | '\u{1a}') {
            out.extend_from_slice(format!("\\u{n:04x}").as_bytes());
        } else {
            out.push(n as u8);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(v: &str) -> Obj {
        Obj::Str(v.into())
    }

    #[test]
    fn round_trips_through_both_protocols() {
        let obj = Obj::Dict(vec![
            (s("a"), Obj::List(vec![Obj::Int(1), Obj::Int(300), Obj::Int(-5), Obj::Int(1 << 40), Obj::Int(-(1 << 40))])),
            (s("b"), Obj::Bytes(b"\xff\x00x".to_vec())),
            (s("c"), Obj::Bytes(Vec::new())),
            (s("d"), Obj::None),
            (s("e"), Obj::Bool(true)),
            (s("f"), Obj::Float(1.5)),
            (s("g \u{2603} \\ \n"), s("\u{1f600}\u{e9}")),
        ]);
        for proto in [0, 2] {
            let bytes = Pickler::dumps(&obj, proto);
            let mut back = load(&bytes, Globals::Plain).unwrap();
            // bytes() comes back as None.
            if let Obj::Dict(items) = &mut back {
                for (k, v) in items.iter_mut() {
                    if *k == s("c") {
                        assert_eq!(*v, Obj::None);
                        *v = Obj::Bytes(Vec::new());
                    }
                }
            }
            assert_eq!(back, obj, "protocol {proto}");
        }
    }

    #[test]
    fn header_key_dict_decodes_as_its_dict() {
        let obj = Obj::Dict(vec![(s("headers"), Obj::HeaderKeyDict(vec![(s("X-Size"), s("5"))]))]);
        let back = load(&Pickler::dumps(&obj, 0), Globals::Reconstruct).unwrap();
        assert_eq!(back, Obj::Dict(vec![(s("headers"), Obj::Dict(vec![(s("X-Size"), s("5"))]))]));
    }

    #[test]
    fn refuses_what_swift_would_not_write_or_would_hurt() {
        // Forbidden global (the classic exploit).
        assert!(load(b"cos\nsystem\n(S'true'\ntR.", Globals::Plain).unwrap_err().contains("forbidden"));
        // Huge length prefixes: no allocation, an error.
        assert!(load(b"\x80\x02X\xff\xff\xff\xffab.", Globals::Plain).is_err());
        assert!(load(b"\x80\x04\x8e\xff\xff\xff\xff\xff\xff\xff\xffab.", Globals::Plain).is_err());
        // Deep nesting.
        let mut deep = b"\x80\x02".to_vec();
        deep.extend([b']'].repeat(100_000));
        deep.extend([b'a'].repeat(99_999));
        deep.push(b'.');
        assert!(load(&deep, Globals::Plain).unwrap_err().contains("deeply"));
        // A memo bomb: each level references the previous one 1000 times.
        let mut bomb = b"\x80\x02X\x01\x00\x00\x00xq\x00".to_vec();
        for level in 0..6u8 {
            bomb.extend_from_slice(b"0](");
            bomb.extend([b'h', level].repeat(1000));
            bomb.extend_from_slice(&[b'e', b'q', level + 1]);
        }
        bomb.push(b'.');
        assert!(load(&bomb, Globals::Plain).is_err());
        // The same with CPython's order, memoising each list before filling
        // it (`] r k ( j k-1 j k-1 e`): 64 levels would be 2^64 nodes.
        let mut bomb = b"\x80\x02]r\x00\x00\x00\x00".to_vec();
        for level in 1..64u32 {
            bomb.extend_from_slice(b"]r");
            bomb.extend_from_slice(&level.to_le_bytes());
            bomb.push(b'(');
            for _ in 0..2 {
                bomb.push(b'j');
                bomb.extend_from_slice(&(level - 1).to_le_bytes());
            }
            bomb.push(b'e');
        }
        bomb.push(b'.');
        assert!(load(&bomb, Globals::Plain).unwrap_err().contains("shared containers are refused"));
        // A deep chain through the memo (`] r k j k-1 a`) likewise.
        let mut chain = b"\x80\x02]r\x00\x00\x00\x00".to_vec();
        for level in 1..100_000u32 {
            chain.extend_from_slice(b"]r");
            chain.extend_from_slice(&level.to_le_bytes());
            chain.push(b'j');
            chain.extend_from_slice(&(level - 1).to_le_bytes());
            chain.push(b'a');
        }
        chain.push(b'.');
        assert!(load(&chain, Globals::Plain).is_err());
        // Truncations and garbage of every length.
        let good = Pickler::dumps(&Obj::Dict(vec![(s("k"), Obj::Bytes(b"value".to_vec()))]), 2);
        for n in 0..good.len() {
            assert!(load(&good[..n], Globals::Plain).is_err(), "{n}");
        }
        assert!(load(b"\x80\x02}q\x00N.", Globals::Plain).is_err(), "two objects left");
        assert!(load(b"\x80\x02)\x00", Globals::Plain).is_err());
        // Trailing bytes after STOP are ignored, as Python does.
        let mut trailing = good.clone();
        trailing.extend_from_slice(b"junk");
        assert!(load(&trailing, Globals::Plain).is_ok());
    }
}
