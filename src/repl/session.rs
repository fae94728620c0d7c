//! The session: the files loaded and the items typed at the prompt,
//! checked together as one program.
//!
//! With one file loaded and nothing typed, the program is that file, so
//! `:check` says exactly what `guardflow check FILE` says. Otherwise the
//! root is a file named `<repl>` that `use`s each loaded file and holds
//! the typed items after them. A typed item replaces the item of the same
//! name and namespace: an earlier typed one in place, a loaded one by
//! blanking it out of the file's text (spaces keep every other span).

use std::path::{Path, PathBuf};

use crate::check::{self, Checked, FsLoader, Loader};
use crate::source::{FileId, SourceMap};
use crate::syntax::{self, ast};

/// The name of the session's own root file.
pub const ROOT: &str = "<repl>";

/// What an item defines, for replacing it: a name in its namespace, a
/// test's name, a file default, or (for `use`) its text.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Key {
    Name(&'static str, String),
    Test(String),
    Default(&'static str),
    Text(String),
}

/// An item of a text: what it defines, in words, and where it is
/// (its doc comment and any comment before it included).
struct Segment {
    key: Key,
    name: Option<String>,
    what: String,
    range: std::ops::Range<usize>,
}

/// A file read by `:load`.
pub struct LoadedFile {
    /// As the user wrote it; relative paths are relative to the directory
    /// the REPL started in.
    pub path: PathBuf,
    text: String,
    segments: Vec<Segment>,
}

/// An item typed at the prompt.
pub struct Entry {
    key: Key,
    name: Option<String>,
    pub what: String,
    pub text: String,
}

/// What `define` did with each item of the input.
pub struct Defined {
    pub what: String,
    pub replaced: bool,
}

#[derive(Default)]
pub struct Session {
    pub files: Vec<LoadedFile>,
    pub entries: Vec<Entry>,
}

/// A program built from the session.
pub struct Built {
    pub checked: Checked,
}

impl Session {
    /// Reads `path` and adds it (again, if it is loaded already). Returns
    /// how many items it has.
    pub fn load(&mut self, path: &Path) -> Result<usize, String> {
        // `./a` and `a` are one file
        let path: PathBuf = path
            .components()
            .filter(|c| !matches!(c, std::path::Component::CurDir))
            .collect();
        let path = path.as_path();
        let text = FsLoader
            .read(path)
            .map_err(|reason| format!("cannot read `{}`: {reason}", path.display()))?;
        let (segments, _) = segments(&text);
        let n = segments.len();
        let file = LoadedFile {
            path: path.to_path_buf(),
            text,
            segments,
        };
        match self.files.iter_mut().find(|f| f.path == path) {
            Some(f) => *f = file,
            None => self.files.push(file),
        }
        Ok(n)
    }

    /// Reads every loaded file again.
    pub fn reload(&mut self) -> Result<usize, String> {
        let paths: Vec<PathBuf> = self.files.iter().map(|f| f.path.clone()).collect();
        for p in &paths {
            self.load(p)?;
        }
        Ok(paths.len())
    }

    /// Adds the items of `text`, each replacing an earlier item that
    /// defines the same thing. Input with syntax errors adds nothing: the
    /// errors come back, rendered.
    pub fn define(&mut self, text: &str, color: bool) -> Result<Vec<Defined>, String> {
        let (segs, errors) = segments(text);
        if !errors.is_empty() {
            let mut sources = SourceMap::new();
            let id = sources.add(ROOT, text);
            let (_, errors) = syntax::parse(id, text);
            let renderer = crate::diagnostics::Renderer::new(&sources);
            return Err(errors
                .iter()
                .map(|e| renderer.render(&e.to_diagnostic(), color))
                .collect());
        }
        let mut out = Vec::new();
        for seg in segs {
            let entry = Entry {
                key: seg.key,
                name: seg.name,
                what: seg.what.clone(),
                text: text[seg.range].trim().to_string(),
            };
            let replaced = match self.entries.iter().position(|e| e.key == entry.key) {
                Some(i) => {
                    self.entries[i] = entry;
                    true
                }
                None => {
                    let shadows = self
                        .files
                        .iter()
                        .any(|f| f.segments.iter().any(|s| s.key == entry.key));
                    self.entries.push(entry);
                    shadows
                }
            };
            out.push(Defined {
                what: seg.what,
                replaced,
            });
        }
        Ok(out)
    }

    /// Checks the session; `extra` (temporary items of a command) is
    /// appended to the root.
    pub fn build(&self, extra: Option<&str>) -> Built {
        if let ([file], true, None) = (self.files.as_slice(), self.entries.is_empty(), extra) {
            let name = file.path.to_string_lossy().into_owned();
            let mut loader = SessionLoader { files: &[] };
            return Built {
                checked: check::check_with(&name, &file.text, &mut loader),
            };
        }
        let mut root = String::new();
        for f in &self.files {
            root.push_str(&format!("use \"{}\"\n", escape(&f.path.to_string_lossy())));
        }
        for e in &self.entries {
            root.push_str(&e.text);
            root.push('\n');
        }
        if let Some(extra) = extra {
            root.push_str(extra);
            root.push('\n');
        }
        let masked: Vec<(PathBuf, String)> = self
            .files
            .iter()
            .map(|f| (f.path.clone(), self.masked(f)))
            .collect();
        let mut loader = SessionLoader { files: &masked };
        Built {
            checked: check::check_with(ROOT, &root, &mut loader),
        }
    }

    /// `file`'s text with the items replaced at the prompt blanked
    /// out; line breaks stay, so every other span is unchanged.
    fn masked(&self, file: &LoadedFile) -> String {
        let mut text = file.text.clone().into_bytes();
        for seg in &file.segments {
            if self.entries.iter().any(|e| e.key == seg.key) {
                for b in &mut text[seg.range.clone()] {
                    if *b != b'\n' {
                        *b = b' ';
                    }
                }
            }
        }
        // item ranges start and end at character boundaries, so whole
        // characters become spaces and the text stays UTF-8
        String::from_utf8(text).unwrap_or_default()
    }

    /// Where relative paths of a run resolve: the first loaded file's
    /// directory, else the current one.
    pub fn workdir(&self) -> PathBuf {
        match self.files.first().and_then(|f| f.path.parent()) {
            Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
            _ => PathBuf::from("."),
        }
    }

    /// The names the session defines, for completion, whether or not the
    /// session checks.
    pub fn names(&self) -> Vec<(String, super::complete::NameKind)> {
        use super::complete::NameKind;
        let mut out = Vec::new();
        let texts = self
            .files
            .iter()
            .map(|f| f.text.as_str())
            .chain(self.entries.iter().map(|e| e.text.as_str()));
        for text in texts {
            let (file, _) = syntax::parse(FileId(0), text);
            for item in &file.items {
                if let Some(name) = item.kind.name() {
                    let kind = match item.kind {
                        ast::ItemKind::Task(_) => NameKind::Task,
                        ast::ItemKind::Action(_) => NameKind::Action,
                        _ => NameKind::Other,
                    };
                    out.push((name.name.clone(), kind));
                }
            }
        }
        out
    }
}

impl LoadedFile {
    /// Each item: what it is, in words, and its name if it has one.
    pub fn items(&self) -> impl Iterator<Item = (&str, Option<&str>)> {
        self.segments
            .iter()
            .map(|s| (s.what.as_str(), s.name.as_deref()))
    }
}

impl Entry {
    pub fn name(&self) -> Option<&str> {
        self.name.as_deref()
    }
}

impl Session {
    /// The definitions of `name` in force: where each is, and its text
    /// (doc comment included, other comments before it left out).
    pub fn definitions(&self, name: &str) -> Vec<(String, String)> {
        let mut out = Vec::new();
        for f in &self.files {
            for seg in &f.segments {
                if seg.name.as_deref() != Some(name)
                    || self.entries.iter().any(|e| e.key == seg.key)
                {
                    continue;
                }
                let text = &f.text[seg.range.clone()];
                let body = strip_comments(text);
                let start = seg.range.end - body.len();
                let line = f.text[..start].matches('\n').count() + 1;
                out.push((
                    format!("{}:{line}", f.path.display()),
                    body.trim_end().to_string(),
                ));
            }
        }
        for e in &self.entries {
            if e.name.as_deref() == Some(name) {
                out.push((
                    "typed at the prompt".to_string(),
                    strip_comments(&e.text).trim_end().to_string(),
                ));
            }
        }
        out
    }
}

/// `text` from its first line that is not blank or a `//` comment (a
/// `///` doc comment stays).
fn strip_comments(text: &str) -> &str {
    let mut rest = text;
    loop {
        let trimmed = rest.trim_start();
        if trimmed.starts_with("//") && !trimmed.starts_with("///") {
            rest = trimmed.split_once('\n').map_or("", |(_, r)| r);
        } else {
            return trimmed;
        }
    }
}

/// Serves the loaded files' (masked) text; other files from disk.
struct SessionLoader<'a> {
    files: &'a [(PathBuf, String)],
}

impl Loader for SessionLoader<'_> {
    fn read(&mut self, path: &Path) -> Result<String, String> {
        match self.files.iter().find(|(p, _)| p == path) {
            Some((_, text)) => Ok(text.clone()),
            None => FsLoader.read(path),
        }
    }
}

/// A path as the body of a `"…"` string.
fn escape(path: &str) -> String {
    let mut out = String::new();
    for c in path.chars() {
        if matches!(c, '"' | '\\' | '{' | '}') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// The items of `text`, each from the end of the previous one, and the
/// syntax errors.
fn segments(text: &str) -> (Vec<Segment>, Vec<syntax::SyntaxError>) {
    let (file, errors) = syntax::parse(FileId(0), text);
    let mut out = Vec::new();
    let mut from = 0;
    for item in &file.items {
        let end = (item.span.end as usize).min(text.len());
        let (key, what) = key(item);
        out.push(Segment {
            key,
            name: item.kind.name().map(|n| n.name.clone()),
            what,
            range: from.min(end)..end,
        });
        from = end;
    }
    (out, errors)
}

fn key(item: &ast::Item) -> (Key, String) {
    use ast::ItemKind as K;
    let named = |ns: &'static str, kind: &str, name: &ast::Ident| {
        (
            Key::Name(ns, name.name.clone()),
            format!("{kind} `{}`", name.name),
        )
    };
    match &item.kind {
        K::Input(i) => named("input", "input", &i.name),
        K::Type(t) => named("type", "type", &t.name),
        K::Generator(g) => named("generator", "generator", &g.name),
        K::Guard(g) => named("guard", "guard", &g.name),
        K::Extern(e) => match e.kind {
            ast::ExternKind::Guard => named("guard", "extern guard", &e.name),
            ast::ExternKind::Generator => named("generator", "extern generator", &e.name),
            ast::ExternKind::Effect => named("effect", "extern effect", &e.name),
        },
        K::Resource(r) => named("resource", "resource", &r.name),
        K::Action(a) => named("callable", "action", &a.name),
        K::Task(t) => named("callable", "task", &t.name),
        K::Test(t) => {
            let name = t.name.template();
            (Key::Test(name.clone()), format!("test \"{name}\""))
        }
        K::Default(d) => {
            let p = match d {
                ast::Default::Retry(_) => ":default-retry",
                ast::Default::Timeout(_) => ":default-timeout",
                ast::Default::P(_) => ":default-p",
                ast::Default::MaxTokens(_) => ":default-max-tokens",
            };
            (Key::Default(p), format!("`{p}`"))
        }
        K::Use(u) => {
            let text = match u {
                ast::Use::Std(names) => {
                    let n: Vec<&str> = names.iter().map(|n| n.name.as_str()).collect();
                    format!("std.{{{}}}", n.join(", "))
                }
                ast::Use::File(f) => format!("\"{}\"", f.template()),
            };
            (Key::Text(text.clone()), format!("use {text}"))
        }
    }
}
