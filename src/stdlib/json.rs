//! JSON: the `json_syntax` and `json_schema` guards, JSON Schemas derived
//! from guardflow types, and turning a generator's answer into a
//! `Json<T>` or `Code<lang>` artifact (fenced Markdown blocks included).

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};

use jsonschema::Validator;
use serde_json::json;

use super::syntax::canonical;
use super::text::{excerpt, line_col, shorten};
use crate::check::ir::Ty;
use crate::runtime::{Value, Verdict};

/// How many validation errors feedback lists.
const MAX_ERRORS: usize = 5;

/// How many compiled validators the cache keeps before starting over.
const VALIDATOR_CACHE_LIMIT: usize = 256;

/// Schemas longer than this are not repeated in feedback.
const SCHEMA_IN_FEEDBACK: usize = 1000;

/// Passes when `text` is one valid JSON value; the feedback gives the
/// line and column of the first error.
pub fn json_syntax(text: &str) -> Verdict {
    match parse(text) {
        Ok(_) => Verdict::Pass,
        Err(e) => Verdict::fail(format!("the text is not valid JSON: {e}")),
    }
}

/// Parses `text` as JSON; the error names the line and column (1-based,
/// in characters), shows the line, and hints at the usual mistakes.
fn parse(text: &str) -> Result<Value, String> {
    if text.trim().is_empty() {
        return Err("the text is empty; expected a JSON value".to_string());
    }
    serde_json::from_str(text).map_err(|e| {
        // at the end, serde_json points at the last character, not past it
        let eof = e.classify() == serde_json::error::Category::Eof;
        let (line, col) = position(text, e.line(), e.column() + usize::from(eof));
        let message = e.to_string();
        let suffix = format!(" at line {} column {}", e.line(), e.column());
        let message = message.strip_suffix(&suffix).unwrap_or(&message);
        let mut out = format!(
            "line {line}, column {col}: {message}\n{}",
            excerpt(text, line, col)
        );
        if text.trim_start().starts_with("```") {
            out.push_str("\nThe JSON must not be wrapped in a Markdown ``` code block.");
        } else if eof {
            out.push_str("\nThe JSON ends too early: close every string, array and object.");
        } else if message.starts_with("trailing characters") {
            out.push_str("\nOnly one JSON value is allowed; remove the text after it.");
        }
        out
    })
}

/// serde_json's 1-based line and byte column as a 1-based line and
/// character column.
fn position(text: &str, line: usize, byte_col: usize) -> (usize, usize) {
    let line_start: usize = text
        .split_inclusive('\n')
        .take(line.saturating_sub(1))
        .map(str::len)
        .sum();
    line_col(text, line_start + byte_col.saturating_sub(1))
}

/// The JSON Schema of values of guardflow type `ty`: `Text` and `Code`
/// are strings, `Int` and `Duration` (milliseconds, not negative)
/// integers, `Float` numbers, records objects with every field required
/// and no others, enums strings among their tags, and `Json<T>` the
/// schema of `T`.
pub fn schema_of(ty: &Ty) -> Value {
    match ty {
        Ty::Text | Ty::Code { .. } | Ty::Program => json!({ "type": "string" }),
        Ty::Int | Ty::Generator => json!({ "type": "integer" }),
        Ty::Float => json!({ "type": "number" }),
        Ty::Bool => json!({ "type": "boolean" }),
        Ty::Duration => json!({ "type": "integer", "minimum": 0 }),
        Ty::Json { of } => schema_of(of),
        Ty::List { of, max: None } => json!({ "type": "array", "items": schema_of(of) }),
        // the bound is the schema's: a longer list is refused where it is
        // produced, with feedback to the model
        Ty::List { of, max: Some(n) } => {
            json!({ "type": "array", "items": schema_of(of), "maxItems": n })
        }
        Ty::Map { of } => json!({ "type": "object", "additionalProperties": schema_of(of) }),
        Ty::Record { fields } => {
            let properties: serde_json::Map<String, Value> = fields
                .iter()
                .map(|(name, ty)| (name.clone(), schema_of(ty)))
                .collect();
            let required: Vec<&String> = fields.iter().map(|(name, _)| name).collect();
            json!({
                "type": "object",
                "properties": properties,
                "required": required,
                "additionalProperties": false,
            })
        }
        Ty::Enum { tags } => json!({ "type": "string", "enum": tags }),
    }
}

/// The compiled validator for a schema, by its text; compiled once.
fn validator(
    key: &str,
    schema: impl FnOnce() -> Result<Value, String>,
) -> Result<Arc<Validator>, String> {
    static CACHE: OnceLock<Mutex<HashMap<String, Arc<Validator>>>> = OnceLock::new();
    let cache = CACHE.get_or_init(Default::default);
    if let Some(v) = cache.lock().unwrap_or_else(|e| e.into_inner()).get(key) {
        return Ok(Arc::clone(v));
    }
    let compiled = jsonschema::validator_for(&schema()?).map_err(|e| {
        let at = e.instance_path().as_str();
        let message = shorten(&e.to_string(), 300);
        if at.is_empty() {
            message
        } else {
            format!("at {at}: {message}")
        }
    })?;
    let compiled = Arc::new(compiled);
    let mut cache = cache.lock().unwrap_or_else(|e| e.into_inner());
    if cache.len() >= VALIDATOR_CACHE_LIMIT {
        cache.clear();
    }
    cache.insert(key.to_string(), Arc::clone(&compiled));
    Ok(compiled)
}

/// The validation errors of `value`, listed, or `None` when it is valid.
fn violations(validator: &Validator, value: &Value) -> Option<String> {
    let mut errors = validator.iter_errors(value);
    let mut listed = Vec::new();
    let mut total = 0;
    for e in errors.by_ref() {
        total += 1;
        if listed.len() < MAX_ERRORS {
            let path = e.instance_path().as_str();
            let path = if path.is_empty() {
                "the top level".to_string()
            } else {
                path.to_string()
            };
            listed.push(format!("- at {path}: {}", shorten(&e.to_string(), 300)));
        }
        if total > 1000 {
            break;
        }
    }
    if total == 0 {
        return None;
    }
    let mut out = match total {
        1 => "1 error:".to_string(),
        n => format!("{n} errors:"),
    };
    for line in &listed {
        out.push('\n');
        out.push_str(line);
    }
    if total > listed.len() {
        out.push_str(&format!("\n- and {} more", total - listed.len()));
    }
    Some(out)
}

/// Passes when `text` is JSON valid against the JSON Schema in
/// `schema_text`. A schema that is not JSON, or not a valid schema, is
/// fatal; the feedback lists up to five errors with their JSON pointers.
pub fn json_schema(text: &str, schema_text: &str) -> Verdict {
    let compiled = validator(schema_text, || {
        serde_json::from_str(schema_text).map_err(|e| format!("it is not valid JSON: {e}"))
    });
    let compiled = match compiled {
        Ok(v) => v,
        Err(e) => {
            return Verdict::fatal(format!(
                "the schema given to the json_schema guard is invalid: {e}"
            ))
        }
    };
    let value = match parse(text) {
        Ok(v) => v,
        Err(e) => return Verdict::fail(format!("the text is not valid JSON: {e}")),
    };
    match violations(&compiled, &value) {
        None => Verdict::Pass,
        Some(list) => Verdict::fail(format!("the JSON does not match the schema: {list}")),
    }
}

/// Turns a generator's answer into the value of a `Json<T>` (or list or
/// record) artifact of type `ty`: the first ```json (or plain ```)
/// block's contents, else the whole answer, parsed and validated against
/// [`schema_of`]`(ty)`. Integral floats where `ty` has an `Int` become
/// integers. The error is feedback for the generator.
pub fn convert_json(text: &str, ty: &Ty) -> Result<Value, String> {
    let blocks = fenced_blocks(text);
    let (body, fenced) = match pick(&blocks, "json") {
        Some(block) => (block.body.as_str(), true),
        None if blocks.is_empty() || parse(text).is_ok() => (text.trim(), false),
        None => return Err(wrong_blocks(&blocks, "json", "the JSON")),
    };
    let schema = schema_of(ty);
    let schema_text = schema.to_string();
    let hint = if schema_text.len() <= SCHEMA_IN_FEEDBACK {
        format!("\nThe answer must be one JSON value matching this JSON Schema: {schema_text}")
    } else {
        String::new()
    };
    let inside = if fenced {
        " (in its ```json code block)"
    } else {
        ""
    };
    let mut value =
        parse(body).map_err(|e| format!("the answer is not valid JSON{inside}: {e}{hint}"))?;
    let compiled = validator(&schema_text, || Ok(schema.clone()))
        .map_err(|e| format!("internal error: the schema of type {ty} is invalid: {e}"))?;
    if let Some(list) = violations(&compiled, &value) {
        return Err(format!(
            "the JSON does not match the expected type: {list}{hint}"
        ));
    }
    integers(&mut value, ty);
    Ok(value)
}

/// Makes the integral floats at `Int` positions of `ty` integers.
fn integers(value: &mut Value, ty: &Ty) {
    match (ty, value) {
        (Ty::Int | Ty::Duration, v @ Value::Number(_)) => {
            if let Some(f) = v.as_f64().filter(|_| !v.is_i64() && !v.is_u64()) {
                if f.fract() == 0.0 && f.abs() < 9.0e15 {
                    *v = Value::from(f as i64);
                }
            }
        }
        (Ty::Json { of }, v) => integers(v, of),
        (Ty::List { of, .. }, Value::Array(items)) => {
            items.iter_mut().for_each(|v| integers(v, of))
        }
        (Ty::Map { of }, Value::Object(map)) => map.values_mut().for_each(|v| integers(v, of)),
        (Ty::Record { fields }, Value::Object(map)) => {
            for (name, ty) in fields {
                if let Some(v) = map.get_mut(name) {
                    integers(v, ty);
                }
            }
        }
        _ => {}
    }
}

/// Extracts the code of a `Code<lang>` artifact from a generator's
/// answer: the first fenced block marked `lang` (or an alias: py, rs, js,
/// ts), else the first unmarked block; with no fence at all, the whole
/// answer (leading blank lines and trailing whitespace removed). Fences of
/// more than three backticks (or `~~~`) and an unclosed last fence are
/// handled. The error, when the answer's blocks are all marked with other
/// languages, names them.
pub fn extract_code(text: &str, lang: &str) -> Result<String, String> {
    let blocks = fenced_blocks(text);
    if blocks.is_empty() {
        return Ok(strip_blank_start(text).trim_end().to_string());
    }
    match pick(&blocks, lang) {
        Some(block) => Ok(strip_blank_start(&block.body).trim_end().to_string()),
        None => Err(wrong_blocks(&blocks, lang, &format!("the {lang} code"))),
    }
}

fn strip_blank_start(text: &str) -> &str {
    let mut rest = text;
    while let Some(i) = rest.find('\n') {
        if rest[..i].trim().is_empty() {
            rest = &rest[i + 1..];
        } else {
            break;
        }
    }
    rest
}

fn wrong_blocks(blocks: &[Block], lang: &str, what: &str) -> String {
    let mut marks: Vec<String> = Vec::new();
    for b in blocks {
        let m = format!("`{}`", b.info);
        if !marks.contains(&m) {
            marks.push(m);
        }
    }
    format!(
        "expected {what} in a ```{lang} code block, but the answer's code blocks are marked {}; \
         put {what} in a block that starts with ```{lang}",
        marks.join(", ")
    )
}

/// One fenced code block of a Markdown text.
#[derive(Debug)]
struct Block {
    /// The info string's first word, lowercased (`python`, or empty).
    info: String,
    body: String,
}

/// The language key of an info string or a `Code<lang>` language.
fn lang_key(lang: &str) -> String {
    canonical(lang).map_or_else(|| lang.trim().to_ascii_lowercase(), str::to_string)
}

/// The block to take for `lang`: the first marked with it (preferring
/// one with content), else the first unmarked.
fn pick<'b>(blocks: &'b [Block], lang: &str) -> Option<&'b Block> {
    let key = lang_key(lang);
    let marked = blocks
        .iter()
        .filter(|b| !b.info.is_empty() && lang_key(&b.info) == key);
    let plain = blocks.iter().filter(|b| b.info.is_empty());
    let nonempty = |b: &&Block| !b.body.trim().is_empty();
    let marked: Vec<&Block> = marked.collect();
    marked
        .iter()
        .copied()
        .find(nonempty)
        .or_else(|| marked.first().copied())
        .or_else(|| plain.clone().find(nonempty))
        .or_else(|| plain.clone().next())
}

/// The fenced code blocks of `text`, in order (CommonMark fences of three
/// or more backticks or tildes; an unclosed fence runs to the end).
fn fenced_blocks(text: &str) -> Vec<Block> {
    let mut blocks = Vec::new();
    let mut lines = text.split_inclusive('\n');
    while let Some(line) = lines.next() {
        let Some((fence, len, info, indent)) = opening_fence(line) else {
            continue;
        };
        let mut body = String::new();
        for inner in lines.by_ref() {
            let t = inner.trim();
            if t.len() >= len && t.chars().all(|c| c == fence) {
                break;
            }
            // remove up to the opening fence's indentation
            let spaces = inner.len() - inner.trim_start_matches(' ').len();
            body.push_str(&inner[spaces.min(indent)..]);
        }
        blocks.push(Block { info, body });
    }
    blocks
}

/// (fence character, fence length, info word, indentation) if `line`
/// opens a fenced block.
fn opening_fence(line: &str) -> Option<(char, usize, String, usize)> {
    let trimmed = line.trim_start();
    let indent = line.len() - trimmed.len();
    let fence = trimmed.chars().next().filter(|&c| c == '`' || c == '~')?;
    let len = trimmed.len() - trimmed.trim_start_matches(fence).len();
    if len < 3 {
        return None;
    }
    let rest = trimmed[len..].trim();
    if fence == '`' && rest.contains('`') {
        return None; // inline code such as ```x```
    }
    let info = rest
        .split(|c: char| c.is_whitespace() || matches!(c, ',' | '{' | '}' | ':'))
        .find(|w| !w.is_empty())
        .unwrap_or("")
        .trim_start_matches('.')
        .to_ascii_lowercase();
    Some((fence, len, info, indent))
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::runtime::value::expect_fail as fail;

    fn person() -> Ty {
        Ty::Record {
            fields: vec![
                ("name".to_string(), Ty::Text),
                ("age".to_string(), Ty::Int),
                (
                    "tags".to_string(),
                    Ty::List {
                        of: Box::new(Ty::Enum {
                            tags: vec!["a".into(), "b".into()],
                        }),
                        max: None,
                    },
                ),
            ],
        }
    }

    #[test]
    fn syntax_guard() {
        assert_eq!(json_syntax(" {\"a\": [1, 2.5, null]} "), Verdict::Pass);
        let f = fail(json_syntax("{\n  \"é\": 1,\n  \"b\" 2\n}"));
        assert!(
            f.starts_with("the text is not valid JSON: line 3, column 7: expected `:`"),
            "{f}"
        );
        assert!(f.contains("   3 |   \"b\" 2\n     |       ^"), "{f}");
        let f = fail(json_syntax("{\"a\": 1"));
        assert!(
            f.contains("line 1, column 8: EOF while parsing an object"),
            "{f}"
        );
        assert!(fail(json_syntax("  ")).contains("is empty"));
        let f = fail(json_syntax("```json\n{}\n```"));
        assert!(f.contains("must not be wrapped in a Markdown"), "{f}");
        let f = fail(json_syntax("{} {}"));
        assert!(
            f.contains("trailing characters") && f.contains("Only one JSON value"),
            "{f}"
        );
    }

    #[test]
    fn schemas_of_types() {
        assert_eq!(schema_of(&Ty::Text), json!({"type": "string"}));
        assert_eq!(
            schema_of(&Ty::Code {
                lang: "python".into()
            }),
            json!({"type": "string"})
        );
        assert_eq!(schema_of(&Ty::Float), json!({"type": "number"}));
        assert_eq!(schema_of(&Ty::Bool), json!({"type": "boolean"}));
        assert_eq!(
            schema_of(&Ty::Duration),
            json!({"type": "integer", "minimum": 0})
        );
        assert_eq!(
            schema_of(&Ty::Json {
                of: Box::new(Ty::Int)
            }),
            json!({"type": "integer"})
        );
        assert_eq!(
            schema_of(&person()),
            json!({
                "type": "object",
                "properties": {
                    "name": {"type": "string"},
                    "age": {"type": "integer"},
                    "tags": {"type": "array", "items": {"type": "string", "enum": ["a", "b"]}},
                },
                "required": ["name", "age", "tags"],
                "additionalProperties": false,
            })
        );
    }

    #[test]
    fn schema_guard() {
        let schema =
            r#"{"type": "object", "required": ["n"], "properties": {"n": {"type": "integer"}}}"#;
        assert_eq!(json_schema("{\"n\": 3}", schema), Verdict::Pass);
        let f = fail(json_schema("{\"n\": \"x\"}", schema));
        assert!(f.starts_with("the JSON does not match the schema: 1 error:\n- at /n: \"x\" is not of type \"integer\""), "{f}");
        let f = fail(json_schema("{}", schema));
        assert!(
            f.contains("- at the top level: \"n\" is a required property"),
            "{f}"
        );
        let f = fail(json_schema("[1, 2", schema));
        assert!(f.contains("not valid JSON: line 1, column 6"), "{f}");
        let many = r#"{"type": "array", "items": {"type": "string"}}"#;
        let f = fail(json_schema("[1, 2, 3, 4, 5, 6, 7]", many));
        assert!(
            f.contains("7 errors:") && f.contains("- at /4:") && !f.contains("- at /5:"),
            "{f}"
        );
        assert!(f.contains("- and 2 more"), "{f}");
    }

    #[test]
    fn bad_schemas_are_fatal() {
        for (schema, says) in [
            ("{not json", "not valid JSON"),
            (r#"{"type": 12}"#, "invalid"),
            (r#"{"$ref": "http://example.com/s.json"}"#, "invalid"),
        ] {
            match json_schema("{}", schema) {
                Verdict::Fatal(f) => assert!(f.contains(says), "{schema}: {f}"),
                other => panic!("{schema}: {other:?}"),
            }
        }
    }

    #[test]
    fn convert_answers() {
        let ty = Ty::Json {
            of: Box::new(person()),
        };
        let want = json!({"name": "Ann", "age": 30, "tags": ["a"]});
        let bare = r#"{"name": "Ann", "age": 30.0, "tags": ["a"]}"#;
        assert_eq!(convert_json(bare, &ty), Ok(want.clone()));
        assert!(convert_json(bare, &ty).is_ok_and(|v| v["age"].is_i64()));
        let fenced = "Here it is:\n\n```json\n{\"name\": \"Ann\", \"age\": 30, \"tags\": [\"a\"]}\n```\nDone.";
        assert_eq!(convert_json(fenced, &ty), Ok(want.clone()));
        let plain = "````\n{\"name\": \"Ann\", \"age\": 30, \"tags\": [\"a\"]}\n````";
        assert_eq!(convert_json(plain, &ty), Ok(want.clone()));
        let open = "```JSON\n{\"name\": \"Ann\", \"age\": 30, \"tags\": [\"a\"]}\n";
        assert_eq!(convert_json(open, &ty), Ok(want));
        let list = Ty::List {
            of: Box::new(Ty::Int),
            max: None,
        };
        assert_eq!(convert_json(" [1, 2] ", &list), Ok(json!([1, 2])));
    }

    #[test]
    fn convert_feedback() {
        let ty = person();
        let e =
            convert_json(r#"{"name": "Ann", "age": 1.5, "tags": ["c"], "x": 1}"#, &ty).unwrap_err();
        assert!(
            e.starts_with("the JSON does not match the expected type: 3 errors:"),
            "{e}"
        );
        assert!(
            e.contains("- at /age: 1.5 is not of type \"integer\""),
            "{e}"
        );
        assert!(e.contains("- at /tags/0:"), "{e}");
        assert!(e.contains("'x' was unexpected"), "{e}");
        assert!(e.contains("matching this JSON Schema: {"), "{e}");
        let e = convert_json("```json\n{\"name\": \n```", &ty).unwrap_err();
        assert!(
            e.starts_with(
                "the answer is not valid JSON (in its ```json code block): line 2, column 1"
            ),
            "{e}"
        );
        let e = convert_json("```python\nprint(1)\n```", &ty).unwrap_err();
        assert!(
            e.contains("```json code block, but the answer's code blocks are marked `python`"),
            "{e}"
        );
        let e = convert_json("", &Ty::Int).unwrap_err();
        assert!(e.contains("empty"), "{e}");
    }

    #[test]
    fn code_extraction() {
        assert_eq!(
            extract_code("\n\n  x = 1\ny = 2\n\n", "python").as_deref(),
            Ok("  x = 1\ny = 2")
        );
        let text = "Sure:\n```bash\npip install x\n```\n```py\nprint(1)\n```\n";
        assert_eq!(extract_code(text, "python").as_deref(), Ok("print(1)"));
        let text = "```\nplain\n```\n```rust\nfn main() {}\n```";
        assert_eq!(extract_code(text, "rs").as_deref(), Ok("fn main() {}"));
        assert_eq!(extract_code(text, "go").as_deref(), Ok("plain"));
        let text = "`````typescript title=\"a.ts\"\nconst s = \"```\";\n```\nlet x = 1;\n`````\n";
        assert_eq!(
            extract_code(text, "ts").as_deref(),
            Ok("const s = \"```\";\n```\nlet x = 1;")
        );
        let text = "  ```js\n  if (a) {\n    b();\n  }\n  ```";
        assert_eq!(
            extract_code(text, "javascript").as_deref(),
            Ok("if (a) {\n  b();\n}")
        );
        let text = "~~~python\nx = 1\n";
        assert_eq!(extract_code(text, "python").as_deref(), Ok("x = 1"));
        let text = "use ```python``` fences\nx = 1";
        assert_eq!(
            extract_code(text, "python").as_deref(),
            Ok("use ```python``` fences\nx = 1")
        );
        let e = extract_code(
            "```rust\nfn a(){}\n```\n```bash\nls\n```\n```rust\n```",
            "python",
        )
        .unwrap_err();
        assert_eq!(
            e,
            "expected the python code in a ```python code block, but the answer's code blocks are marked \
             `rust`, `bash`; put the python code in a block that starts with ```python"
        );
    }

    #[test]
    fn odd_inputs_do_not_panic() {
        for text in ["```", "````\n", "~~~\n~~", "\u{0}", "```é\n", "{\"a\":", "[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[["] {
            let _ = json_syntax(text);
            let _ = convert_json(text, &Ty::Text);
            let _ = extract_code(text, "python");
            let _ = json_schema(text, "{}");
        }
        assert_eq!(position("a\nbc", 9, 9), (2, 3));
    }
}
