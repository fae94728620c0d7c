//! Values from outside: program inputs (`file(…)`, `folder(…)`,
//! defaults), task arguments, and text given on the command line.

use std::collections::HashMap;
use std::path::Path;

use crate::check::ir::{InputSource, Param, Program, Ty};

use super::eval::constant;
use super::value::Value;

/// A value given as text (`--input name=value`) read as type `ty`: as
/// an artifact of that type would be, but code is taken as it is.
pub fn parse_as(ty: &Ty, text: &str) -> Result<Value, String> {
    match ty {
        Ty::Code { .. } => Ok(Value::String(text.to_string())),
        _ => super::convert::convert(text, ty),
    }
}

/// The value of every program input: given by name, else from its
/// source (a constant, a file, a folder), relative to `workdir`.
pub fn program_inputs(
    program: &Program,
    given: &HashMap<String, Value>,
    workdir: &Path,
) -> Result<Vec<Value>, String> {
    let dirs = super::paths::file_dirs(program, workdir);
    let root: std::sync::Arc<Path> = std::sync::Arc::from(workdir);
    program
        .inputs
        .iter()
        .map(|input| {
            if let Some(v) = given.get(&input.name) {
                return Ok(v.clone());
            }
            // relative to the file that declares the input
            let workdir = &*super::paths::dir_of(&dirs, &root, input.span.file);
            match &input.source {
                Some(InputSource::Value { value }) => Ok(constant(value)),
                Some(InputSource::File { path }) => read_text(&workdir.join(path))
                    .map(Value::String)
                    .map_err(|e| format!("input `{}`: cannot read `{path}`: {e}", input.name)),
                Some(InputSource::Folder { path, glob }) => {
                    read_folder(&workdir.join(path), glob.as_deref())
                        .map_err(|e| format!("input `{}`: cannot read `{path}`: {e}", input.name))
                }
                // an input without a source may go unused by this task
                None => Ok(Value::Null),
            }
        })
        .collect()
}

/// A file an input reads: its path as the source names it, and content.
pub type InputFile = (String, Vec<u8>);

/// The files the program inputs not given by name read (`file(…)`,
/// `folder(…)`), each as its path (as the source names it, relative to
/// `workdir`) and content, by input; an input whose files cannot be read
/// is left out (the run says why when it starts). What a run records to
/// resume with the same contents.
pub fn input_files(
    program: &Program,
    given: &HashMap<String, Value>,
    workdir: &Path,
) -> Vec<(String, Vec<InputFile>)> {
    let mut out = Vec::new();
    let dirs = super::paths::file_dirs(program, workdir);
    let root: std::sync::Arc<Path> = std::sync::Arc::from(workdir);
    for input in &program.inputs {
        if given.contains_key(&input.name) {
            continue;
        }
        let dir = super::paths::dir_of(&dirs, &root, input.span.file);
        let workdir = &*dir;
        let files = match &input.source {
            Some(InputSource::File { path }) => vec![path.clone()],
            Some(InputSource::Folder { path, glob }) => {
                match folder_files(&workdir.join(path), glob.as_deref()) {
                    Ok(names) => names
                        .iter()
                        .filter_map(|p| p.file_name())
                        .map(|n| format!("{}/{}", path.trim_end_matches('/'), n.to_string_lossy()))
                        .collect(),
                    Err(_) => continue,
                }
            }
            _ => continue,
        };
        let read: Result<Vec<_>, _> = files
            .into_iter()
            .map(|f| {
                crate::check::read_bytes(&workdir.join(&f), crate::check::MAX_DATA_BYTES)
                    .map(|bytes| (f, bytes))
            })
            .collect();
        if let Ok(read) = read {
            out.push((input.name.clone(), read));
        }
    }
    out
}

/// The value of program input `name` from the contents of its files (in
/// the order `input_files` gave them), as `program_inputs` reads them.
pub fn input_value(program: &Program, name: &str, contents: Vec<Vec<u8>>) -> Result<Value, String> {
    let text = |bytes: Vec<u8>| {
        String::from_utf8(bytes)
            .map(Value::String)
            .map_err(|_| format!("input `{name}`: the file is not UTF-8 text"))
    };
    match program
        .inputs
        .iter()
        .find(|i| i.name == name)
        .and_then(|i| i.source.as_ref())
    {
        Some(InputSource::File { .. }) => match <[Vec<u8>; 1]>::try_from(contents) {
            Ok([one]) => text(one),
            Err(_) => Err(format!("input `{name}`: one file was expected")),
        },
        Some(InputSource::Folder { .. }) => contents
            .into_iter()
            .map(text)
            .collect::<Result<Vec<_>, _>>()
            .map(Value::Array),
        _ => Err(format!("the program has no input `{name}` read from files")),
    }
}

/// Binds a callee's parameters: by name from `given`, else a program
/// input of the same name, else the parameter's default.
pub fn bind_params(
    callee: &str,
    params: &[Param],
    given: &HashMap<String, Value>,
    program: &Program,
    inputs: &[Value],
) -> Result<Vec<Value>, String> {
    params
        .iter()
        .map(|p| {
            if let Some(v) = given.get(&p.name) {
                return Ok(v.clone());
            }
            let from_input = program
                .inputs
                .iter()
                .position(|i| i.name == p.name)
                .map(|i| &inputs[i])
                .filter(|v| !v.is_null());
            if let Some(v) = from_input {
                return Ok(v.clone());
            }
            match &p.default {
                Some(d) => Ok(constant(d)),
                None => Err(format!(
                    "`{callee}` needs `{}: {}`: give it with `--input {}=VALUE` (or `=@FILE`)",
                    p.name, p.ty, p.name
                )),
            }
        })
        .collect()
}

/// Checks that every input a run needs has a value.
pub fn require_inputs(program: &Program, inputs: &[Value], used: &[bool]) -> Result<(), String> {
    for (i, input) in program.inputs.iter().enumerate() {
        if used.get(i).copied().unwrap_or(false) && inputs[i].is_null() {
            return Err(format!(
                "input `{}: {}` has no value: give it with `--input {}=VALUE` (or `=@FILE`)",
                input.name, input.ty, input.name
            ));
        }
    }
    Ok(())
}

fn read_text(path: &Path) -> Result<String, String> {
    crate::check::read_text(path, crate::check::MAX_DATA_BYTES)
}

/// The texts of the files in `dir` whose names match `glob` (`*` and `?`
/// wildcards), sorted by name.
fn read_folder(dir: &Path, glob: Option<&str>) -> Result<Value, String> {
    folder_files(dir, glob)?
        .iter()
        .map(|p| read_text(p).map(Value::String))
        .collect::<Result<Vec<_>, _>>()
        .map(Value::Array)
}

/// The files in `dir` whose names match `glob`, sorted.
fn folder_files(dir: &Path, glob: Option<&str>) -> Result<Vec<std::path::PathBuf>, String> {
    let entries = std::fs::read_dir(dir).map_err(|e| crate::check::io_reason(&e))?;
    let mut paths: Vec<_> = entries
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.is_file())
        .filter(|p| {
            let name = p
                .file_name()
                .map(|n| n.to_string_lossy())
                .unwrap_or_default();
            glob.is_none_or(|g| wildcard(g.as_bytes(), name.as_bytes()))
        })
        .collect();
    paths.sort();
    Ok(paths)
}

fn wildcard(pattern: &[u8], name: &[u8]) -> bool {
    match (pattern.first(), name.first()) {
        (None, None) => true,
        (Some(b'*'), _) => {
            wildcard(&pattern[1..], name) || (!name.is_empty() && wildcard(pattern, &name[1..]))
        }
        (Some(b'?'), Some(_)) => wildcard(&pattern[1..], &name[1..]),
        (Some(a), Some(b)) if a == b => wildcard(&pattern[1..], &name[1..]),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wildcards_match_like_a_shell() {
        assert!(wildcard(b"*.md", b"a.md"));
        assert!(!wildcard(b"*.md", b"a.mdx"));
        assert!(wildcard(b"a?c", b"abc"));
        assert!(!wildcard(b"a?c", b"ac"));
    }

    #[test]
    fn text_is_read_by_type() {
        assert_eq!(parse_as(&Ty::Int, "42"), Ok(Value::from(42u64)));
        assert!(parse_as(&Ty::Int, "x").is_err());
        assert_eq!(parse_as(&Ty::Bool, "true"), Ok(Value::Bool(true)));
        let e = Ty::Enum {
            tags: vec!["Low".into(), "High".into()],
        };
        assert!(parse_as(&e, "Mid").unwrap_err().contains("Low, High"));
    }
}
