//! Reading atomicguard's JSON: validation against the schema's
//! constraints, then each workflow mapped to what the emitter writes
//! (actions, guards, generators, orderings, prompt templates).

use std::collections::{BTreeSet, HashMap, HashSet};
use std::sync::OnceLock;

use serde_json::{Map, Value};

use super::{ImportError, Source};

/// The most action pairs one workflow may have (orderings are computed
/// over all pairs of pairs).
pub const MAX_ACTION_PAIRS: usize = 200;

/// The schema constraints the importer relies on (written for guardflow
/// after atomicguard's `workflow.schema.json`).
const SCHEMA: &str = include_str!("workflow.schema.json");

/// atomicguard's default model and retries (its schema's defaults).
const DEFAULT_MODEL: &str = "qwen2.5-coder:7b";
const DEFAULT_RMAX: u64 = 3;
/// atomicguard's default wrapper of a rejection's feedback.
const DEFAULT_WRAPPER: &str =
    "GUARD REJECTION:\n{feedback}\nInstruction: Address the rejection above.";
/// The title atomicguard's human review shows when none is given.
const DEFAULT_HUMAN_TITLE: &str = "HUMAN REVIEW REQUIRED";

/// The guard types atomicguard defines that guardflow has.
pub const GUARD_TYPES: &str = "syntax, import, dynamic_test, human, type, composite";

/// Words guardflow gives a meaning beyond the keywords
/// (`syntax::lexer::KEYWORDS`); neither is used as a generated name.
const RESERVED: &[&str] = &[
    "true",
    "false",
    "last",
    "all",
    "any",
    "majority",
    "par",
    "cancel",
    "continue",
    "success",
    "failure",
    "calls",
    "satisfies",
    "feedback",
    "previous",
    "history",
    "specification",
    "len",
    "self",
];

pub struct Parsed {
    pub workflows: Vec<Workflow>,
    pub generators: Vec<Generator>,
    /// The standard guards used (for the `use std.{…}` line).
    pub std_guards: BTreeSet<&'static str>,
    pub dynamic_test: bool,
    pub names_defined: bool,
    pub notes: Vec<String>,
}

pub struct Generator {
    pub name: String,
    pub provider: String,
    pub model: String,
    pub base_url: Option<String>,
    pub api_key_env: Option<String>,
    pub temperature: Option<f64>,
    pub timeout_ms: Option<u64>,
}

pub struct Workflow {
    pub id: String,
    pub title: String,
    pub description: Option<String>,
    pub task: String,
    /// The task's `specification` parameter, when something uses it.
    pub spec: Option<SpecParam>,
    /// In an order that respects `requires`.
    pub pairs: Vec<Pair>,
    pub ordering: Option<String>,
    /// The one action pair nothing requires, if there is one.
    pub result: Option<String>,
}

pub enum SpecParam {
    /// Given inline: the parameter's default.
    Text(String),
    /// atomicguard reads it from a file: given with `--input`.
    File(String),
    /// The workflow has none: given with `--input`.
    Missing,
}

pub struct Pair {
    pub id: String,
    pub action: String,
    pub label: String,
    pub description: Option<String>,
    pub role: Option<String>,
    pub generator: String,
    pub prompt: Vec<Part>,
    /// `(name, type)`; the arguments are the labels of the same names.
    pub params: Vec<(String, &'static str)>,
    pub guard: GExpr,
    pub rmax: u64,
    pub feedback_all: bool,
    pub max_tokens: Option<u64>,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Part {
    Text(String),
    Interp(String),
}

pub enum GExpr {
    /// A guard call, its arguments already written.
    Call(String),
    And(Vec<GExpr>),
    /// `par`, `any`, `majority`.
    Form(&'static str, Vec<GExpr>),
}

#[derive(Default)]
struct Prompt {
    role: Option<String>,
    constraints: Option<String>,
    task: Option<String>,
    feedback_wrapper: Option<String>,
}

/// Collects errors with their place.
struct Ctx<'a> {
    file: &'a str,
    errors: Vec<ImportError>,
    notes: Vec<String>,
}

impl Ctx<'_> {
    fn err(
        &mut self,
        workflow: Option<&str>,
        action: Option<&str>,
        pointer: String,
        message: impl Into<String>,
        help: Option<String>,
    ) {
        self.errors.push(ImportError {
            file: self.file.to_string(),
            workflow: workflow.map(str::to_string),
            action: action.map(str::to_string),
            pointer,
            message: message.into(),
            help,
        });
    }
}

fn validator() -> Option<&'static jsonschema::Validator> {
    static V: OnceLock<Option<jsonschema::Validator>> = OnceLock::new();
    V.get_or_init(|| {
        let schema: Value = serde_json::from_str(SCHEMA).ok()?;
        jsonschema::validator_for(&schema).ok()
    })
    .as_ref()
}

/// A JSON pointer's part, escaped.
fn esc(key: &str) -> String {
    key.replace('~', "~0").replace('/', "~1")
}

fn short(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        s.to_string()
    } else {
        let cut: String = s.chars().take(max).collect();
        format!("{cut}…")
    }
}

/// Parses and maps the document.
pub fn parse(src: Source, prompts: Option<Source>) -> Result<Parsed, Vec<ImportError>> {
    let mut cx = Ctx {
        file: src.name,
        errors: Vec::new(),
        notes: Vec::new(),
    };
    let doc: Value = match serde_json::from_str(src.text) {
        Ok(v) => v,
        Err(e) => {
            cx.err(
                None,
                None,
                String::new(),
                format!("not valid JSON: {e}"),
                Some("an atomicguard workflow is one JSON object; fix the JSON at that line and column".into()),
            );
            return Err(cx.errors);
        }
    };
    let prompts = match prompts {
        Some(p) => read_prompts(p)?,
        None => HashMap::new(),
    };
    // one workflow, or a map of workflows by id
    let mut entries: Vec<(String, String, &Map<String, Value>)> = Vec::new();
    match &doc {
        Value::Object(o) if o.contains_key("action_pairs") => {
            let id = o
                .get("name")
                .and_then(Value::as_str)
                .unwrap_or("workflow")
                .to_string();
            entries.push((id, String::new(), o));
        }
        Value::Object(o)
            if !o.is_empty()
                && o.values().all(|v| {
                    v.as_object()
                        .is_some_and(|w| w.contains_key("action_pairs"))
                }) =>
        {
            for (k, v) in o {
                if let Some(w) = v.as_object() {
                    entries.push((k.clone(), format!("/{}", esc(k)), w));
                }
            }
        }
        _ => {
            cx.err(
                None,
                None,
                String::new(),
                "not an atomicguard workflow: the top level must be a workflow (an object with `name` and `action_pairs`) or an object mapping workflow ids to workflows",
                Some("see atomicguard's workflow.schema.json; docs/import.md shows both forms".into()),
            );
            return Err(cx.errors);
        }
    }
    // the schema first: nothing is mapped from a document that breaks it
    let Some(validator) = validator() else {
        cx.err(None, None, String::new(), "the importer's schema does not compile; this is a bug in guardflow import, please report it", None);
        return Err(cx.errors);
    };
    for (id, base, w) in &entries {
        let value = Value::Object((*w).clone());
        let mut count = 0;
        for e in validator.iter_errors(&value) {
            count += 1;
            if count > 20 {
                break;
            }
            let at = e.instance_path().as_str().to_string();
            let action = at.strip_prefix("/action_pairs/").map(|rest| {
                rest.split('/')
                    .next()
                    .unwrap_or("")
                    .replace("~1", "/")
                    .replace("~0", "~")
            });
            cx.err(
                Some(id),
                action.as_deref(),
                format!("{base}{at}"),
                format!(
                    "does not match atomicguard's workflow schema: {}",
                    short(&e.to_string(), 300)
                ),
                None,
            );
        }
    }
    if !cx.errors.is_empty() {
        return Err(cx.errors);
    }
    let mut gens = Gens::default();
    let mut parsed = Parsed {
        workflows: Vec::new(),
        generators: Vec::new(),
        std_guards: BTreeSet::new(),
        dynamic_test: false,
        names_defined: false,
        notes: Vec::new(),
    };
    let mut callables: HashSet<String> = HashSet::new();
    let single = entries.len() == 1 && entries[0].1.is_empty();
    for (id, base, w) in &entries {
        if let Some(wf) = workflow(
            &mut cx,
            &mut gens,
            &mut parsed,
            &mut callables,
            id,
            base,
            w,
            &prompts,
            single,
        ) {
            parsed.workflows.push(wf);
        }
    }
    if !cx.errors.is_empty() {
        return Err(cx.errors);
    }
    parsed.generators = gens.list;
    parsed.notes = std::mem::take(&mut cx.notes);
    Ok(parsed)
}

/// A `prompts.json`: action pair id → template.
fn read_prompts(src: Source) -> Result<HashMap<String, Prompt>, Vec<ImportError>> {
    let mut cx = Ctx {
        file: src.name,
        errors: Vec::new(),
        notes: Vec::new(),
    };
    let doc: Value = match serde_json::from_str(src.text) {
        Ok(v) => v,
        Err(e) => {
            cx.err(
                None,
                None,
                String::new(),
                format!("not valid JSON: {e}"),
                None,
            );
            return Err(cx.errors);
        }
    };
    let Some(obj) = doc.as_object() else {
        cx.err(
            None,
            None,
            String::new(),
            "does not match atomicguard's prompts schema: the top level must map action pair ids to prompt templates",
            None,
        );
        return Err(cx.errors);
    };
    let mut out = HashMap::new();
    for (id, t) in obj {
        let at = format!("/{}", esc(id));
        let Some(t) = t.as_object() else {
            cx.err(None, Some(id), at, "does not match atomicguard's prompts schema: a prompt template must be an object (`role`, `constraints`, `task`, `feedback_wrapper`)", None);
            continue;
        };
        let mut p = Prompt::default();
        for (k, v) in t {
            let slot = match k.as_str() {
                "role" => &mut p.role,
                "constraints" => &mut p.constraints,
                "task" => &mut p.task,
                "feedback_wrapper" => &mut p.feedback_wrapper,
                _ => continue,
            };
            match v.as_str() {
                Some(s) => *slot = Some(s.to_string()),
                None => cx.err(
                    None,
                    Some(id),
                    format!("{at}/{}", esc(k)),
                    "does not match atomicguard's prompts schema: must be a string",
                    None,
                ),
            }
        }
        out.insert(id.clone(), p);
    }
    if cx.errors.is_empty() {
        Ok(out)
    } else {
        Err(cx.errors)
    }
}

/// A guardflow name for `s`: other characters become `_`, a leading
/// digit gets a `_` before it, a reserved word one after it.
pub fn ident(s: &str, lower: bool) -> String {
    let mut out = String::new();
    let mut last_us = false;
    for c in s.chars() {
        let c = if lower { c.to_ascii_lowercase() } else { c };
        if c.is_ascii_alphanumeric() || c == '_' {
            out.push(c);
            last_us = c == '_';
        } else if !last_us && !out.is_empty() {
            out.push('_');
            last_us = true;
        }
    }
    while out.ends_with('_') && out.len() > 1 && lower {
        out.pop();
    }
    if out.is_empty() {
        out.push_str("unnamed");
    }
    if out.as_bytes()[0].is_ascii_digit() {
        out.insert(0, '_');
    }
    if RESERVED.contains(&out.as_str()) || crate::syntax::lexer::KEYWORDS.contains(&out.as_str()) {
        out.push('_');
    }
    out
}

/// `base`, or `base_2`, `base_3`, … : the first not in `taken`, then taken.
fn unique(base: String, taken: &mut HashSet<String>) -> String {
    let mut name = base.clone();
    let mut n = 2;
    while taken.contains(&name) {
        name = format!("{base}_{n}");
        n += 1;
    }
    taken.insert(name.clone());
    name
}

#[derive(Default)]
struct Gens {
    list: Vec<Generator>,
    names: HashSet<String>,
}

impl Gens {
    /// The name of the generator with this configuration, declared once.
    fn get(&mut self, g: Generator) -> String {
        if let Some(found) = self.list.iter().find(|h| {
            h.provider == g.provider
                && h.model == g.model
                && h.base_url == g.base_url
                && h.api_key_env == g.api_key_env
                && h.temperature == g.temperature
                && h.timeout_ms == g.timeout_ms
        }) {
            return found.name.clone();
        }
        let name = unique(ident(&g.provider, true), &mut self.names);
        self.list.push(Generator {
            name: name.clone(),
            ..g
        });
        name
    }
}

/// The server and key variable of a provider.
fn provider_endpoint(provider: &str) -> (Option<String>, Option<String>) {
    match provider {
        "openai" => (
            Some("https://api.openai.com/v1".into()),
            Some("OPENAI_API_KEY".into()),
        ),
        "openrouter" => (
            Some("https://openrouter.ai/api/v1".into()),
            Some("OPENROUTER_API_KEY".into()),
        ),
        "huggingface" => (
            Some("https://router.huggingface.co/v1".into()),
            Some("HF_TOKEN".into()),
        ),
        _ => (None, None),
    }
}

fn seconds_to_ms(v: &Value) -> Option<u64> {
    let s = v.as_f64()?;
    if !(s > 0.0 && s <= 86_400.0) {
        return None;
    }
    let ms = (s * 1000.0).round();
    Some(ms as u64)
}

#[allow(clippy::too_many_arguments)]
fn workflow(
    cx: &mut Ctx,
    gens: &mut Gens,
    parsed: &mut Parsed,
    callables: &mut HashSet<String>,
    id: &str,
    base: &str,
    w: &Map<String, Value>,
    prompts: &HashMap<String, Prompt>,
    single: bool,
) -> Option<Workflow> {
    let wid = Some(id);
    let title = w
        .get("name")
        .and_then(Value::as_str)
        .unwrap_or(id)
        .to_string();
    let errors_before = cx.errors.len();
    let pairs_obj = w.get("action_pairs").and_then(Value::as_object)?;
    if pairs_obj.is_empty() {
        cx.err(
            wid,
            None,
            format!("{base}/action_pairs"),
            "the workflow has no action pair, so there is nothing to run",
            Some("add at least one action pair".into()),
        );
        return None;
    }
    if pairs_obj.len() > MAX_ACTION_PAIRS {
        cx.err(wid, None, format!("{base}/action_pairs"), format!("the workflow has {} action pairs, more than the {MAX_ACTION_PAIRS} guardflow import reads", pairs_obj.len()), Some("split it into several workflows".into()));
        return None;
    }
    let rmax = w
        .get("rmax")
        .and_then(Value::as_u64)
        .unwrap_or(DEFAULT_RMAX);
    let model = w
        .get("model")
        .and_then(Value::as_str)
        .unwrap_or(DEFAULT_MODEL)
        .to_string();
    let provider = w
        .get("provider")
        .and_then(Value::as_str)
        .unwrap_or("ollama")
        .to_string();
    let constraints = w
        .get("constraints")
        .and_then(Value::as_str)
        .map(str::to_string);
    let spec = match w.get("specification") {
        None => SpecParam::Missing,
        Some(Value::String(s)) => SpecParam::Text(s.clone()),
        Some(Value::Object(o)) => {
            let kind = o.get("type").and_then(Value::as_str).unwrap_or("");
            let r = o
                .get("ref")
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_string();
            match kind {
                "inline" => SpecParam::Text(r),
                "file" => SpecParam::File(r),
                other => {
                    cx.err(
                        wid,
                        None,
                        format!("{base}/specification/type"),
                        format!("a specification of type `{other}` has no guardflow equivalent: guardflow reads a specification as text (given inline or with `--input specification=@FILE`), not from a folder or a service"),
                        Some("give the specification inline, or as `{\"type\": \"file\", \"ref\": \"…\"}` and pass the file with --input".into()),
                    );
                    SpecParam::Missing
                }
            }
        }
        Some(_) => SpecParam::Missing,
    };

    // ids, labels, requires
    let ids: Vec<&String> = pairs_obj.keys().collect();
    let mut labels: HashMap<&str, String> = HashMap::new();
    let mut label_names: HashSet<String> = HashSet::new();
    label_names.insert("specification".into());
    for id in &ids {
        labels.insert(id.as_str(), unique(ident(id, false), &mut label_names));
    }
    let index: HashMap<&str, usize> = ids
        .iter()
        .enumerate()
        .map(|(i, k)| (k.as_str(), i))
        .collect();
    let n = ids.len();
    let mut requires: Vec<Vec<usize>> = vec![Vec::new(); n];
    for (i, pid) in ids.iter().enumerate() {
        let at = format!("{base}/action_pairs/{}/requires", esc(pid));
        let list = pairs_obj[pid.as_str()]
            .get("requires")
            .and_then(Value::as_array);
        for (j, r) in list.into_iter().flatten().enumerate() {
            let r = r.as_str().unwrap_or("");
            match index.get(r) {
                Some(&k) if k == i => cx.err(
                    wid,
                    Some(pid),
                    format!("{at}/{j}"),
                    format!("`{pid}` requires itself, so it could never run"),
                    Some("remove it from its own requires".into()),
                ),
                Some(&k) => {
                    if !requires[i].contains(&k) {
                        requires[i].push(k);
                    }
                }
                None => {
                    let known: Vec<&str> = ids.iter().map(|s| s.as_str()).collect();
                    cx.err(wid, Some(pid), format!("{at}/{j}"), format!("requires `{r}`, which is not an action pair of this workflow (it has {})", known.join(", ")), Some("name an action pair of the same workflow".into()));
                }
            }
        }
    }
    if cx.errors.len() > errors_before {
        return None;
    }
    // the order: depth-first, each pair after what it requires
    let Some(order) = topo(&requires) else {
        let cyc: Vec<&str> = cycle(&requires).iter().map(|&i| ids[i].as_str()).collect();
        cx.err(
            wid,
            None,
            format!("{base}/action_pairs"),
            format!(
                "the requires form a cycle ({} → {}), so none of them could ever run",
                cyc.join(" → "),
                cyc.first().copied().unwrap_or("")
            ),
            Some("remove one of the requires in the cycle".into()),
        );
        return None;
    };
    let before = closure(&requires);

    let mut used_spec = false;
    let mut pairs = Vec::new();
    for &i in &order {
        let pid = ids[i].as_str();
        let p = pairs_obj[pid].as_object()?;
        let at = format!("{base}/action_pairs/{}", esc(pid));
        let rs = Resolver {
            ids: &ids,
            before: &before,
            labels: &labels,
            i,
            wid: id,
            pid,
            at: &at,
        };
        let mut st = State::default();
        // the prompt, as atomicguard builds it
        let mut prompt: Vec<Part> = Vec::new();
        let mut role = None;
        let inline = p.get("prompt").and_then(Value::as_str);
        let tpl = prompts.get(pid);
        let dep_section = |prompt: &mut Vec<Part>, st: &mut State| {
            let missing: Vec<usize> = requires[i]
                .iter()
                .copied()
                .filter(|k| !st.deps.contains(k))
                .collect();
            if missing.is_empty() {
                return;
            }
            if !prompt.is_empty() {
                push_text(prompt, "\n\n");
            }
            push_text(prompt, "# DEPENDENCIES");
            for &k in &missing {
                push_text(prompt, &format!("\n## {}\n", ids[k]));
                prompt.push(Part::Interp(labels[ids[k].as_str()].clone()));
            }
            st.deps.extend(missing);
        };
        if let (Some(_), Some(_)) = (inline, tpl) {
            cx.notes.push(format!("workflow `{id}`, action pair `{pid}`: the inline `prompt` is used; its template in the prompts file is not"));
        }
        if let Some(text) = inline {
            rs.template(cx, &mut st, text, "prompt", &mut prompt);
            dep_section(&mut prompt, &mut st);
        } else if let Some(t) = tpl {
            role = t.role.clone().filter(|r| !r.trim().is_empty());
            let section = |cx: &mut Ctx,
                           st: &mut State,
                           head: &str,
                           body: &str,
                           field: &str,
                           prompt: &mut Vec<Part>,
                           tpl_text: bool| {
                if body.trim().is_empty() {
                    return;
                }
                if !prompt.is_empty() {
                    push_text(prompt, "\n\n");
                }
                push_text(prompt, &format!("# {head}\n"));
                if tpl_text {
                    rs.template(cx, st, body, field, prompt);
                } else {
                    push_text(prompt, body);
                }
            };
            if let Some(c) = &t.constraints {
                section(
                    cx,
                    &mut st,
                    "CONSTRAINTS",
                    c,
                    "constraints",
                    &mut prompt,
                    true,
                );
            }
            if let Some(c) = &constraints {
                section(cx, &mut st, "CONTEXT", c, "constraints", &mut prompt, false);
            }
            // the dependencies go before the history, as atomicguard renders
            // them; placeholders in the task are resolved first
            let mut task_parts = Vec::new();
            if let Some(task) = &t.task {
                rs.template(cx, &mut st, task, "task", &mut task_parts);
            }
            dep_section(&mut prompt, &mut st);
            let wrapper = t.feedback_wrapper.as_deref().unwrap_or(DEFAULT_WRAPPER);
            match wrapper_parts(wrapper) {
                Ok(parts) => {
                    if !prompt.is_empty() {
                        push_text(&mut prompt, "\n\n");
                    }
                    push_text(&mut prompt, "# HISTORY (Context Refinement)\n");
                    for part in parts {
                        if part == Part::Interp("feedback".into()) {
                            st.feedback = true;
                        }
                        match part {
                            Part::Text(t) => push_text(&mut prompt, &t),
                            other => prompt.push(other),
                        }
                    }
                }
                Err(name) => cx.err(
                    wid,
                    Some(pid),
                    format!("/{}/feedback_wrapper", esc(pid)),
                    format!("the feedback wrapper names `{{{name}}}`; atomicguard fills in only `{{feedback}}` there (anything else is a KeyError when it runs)"),
                    Some("use `{feedback}`, and write a literal brace as `{{` or `}}`".into()),
                ),
            }
            if !task_parts.is_empty() {
                if !prompt.is_empty() {
                    push_text(&mut prompt, "\n\n");
                }
                push_text(&mut prompt, "# TASK\n");
                for part in task_parts {
                    match part {
                        Part::Text(t) => push_text(&mut prompt, &t),
                        other => prompt.push(other),
                    }
                }
            }
        } else {
            // no prompt: the specification is the prompt
            match &spec {
                SpecParam::Missing if w.get("specification").is_none() => {
                    cx.err(
                        wid,
                        Some(pid),
                        at.clone(),
                        format!("`{pid}` has no prompt: no `prompt` field, no template `{pid}` in a prompts file, and the workflow has no `specification`"),
                        Some("add a `prompt`, a prompts.json beside the workflow (or --prompts FILE) with an entry for it, or a `specification`".into()),
                    );
                }
                _ => {
                    st.spec = true;
                    prompt.push(Part::Interp("specification".into()));
                    if let Some(c) = &constraints {
                        push_text(&mut prompt, &format!("\n\n# CONTEXT\n{c}"));
                    }
                }
            }
            dep_section(&mut prompt, &mut st);
        }

        // the generator
        let mut max_tokens = None;
        let generator = pair_generator(
            cx,
            gens,
            wid,
            pid,
            &at,
            p,
            &model,
            &provider,
            &mut max_tokens,
        );

        // the guard
        let human_title = p
            .get("human_prompt_title")
            .and_then(Value::as_str)
            .or_else(|| {
                p.get("guard_config")
                    .and_then(|c| c.get("human_prompt_title"))
                    .and_then(Value::as_str)
            })
            .map(str::to_string);
        let first_dep = requires[i]
            .first()
            .map(|&k| labels[ids[k].as_str()].clone());
        let mut g = GuardCx {
            cx,
            wid,
            pid,
            parsed,
            human_title,
            first_dep: first_dep.clone(),
            used_first_dep: false,
        };
        let guard_name = p.get("guard").and_then(Value::as_str).unwrap_or("");
        let guard = if guard_name == "composite" {
            match p.get("guards") {
                Some(spec) => g.composite(spec, &format!("{at}/guards")),
                None => {
                    g.cx.err(
                        wid,
                        Some(pid),
                        format!("{at}/guard"),
                        "a `composite` guard needs `guards`, the guards it combines",
                        Some("add `\"guards\": [\"syntax\", …]`".into()),
                    );
                    None
                }
            }
        } else {
            if p.contains_key("guards") {
                g.cx.err(wid, Some(pid), format!("{at}/guards"), format!("`guards` is read only for a `composite` guard, and this guard is `{guard_name}`"), Some("set `\"guard\": \"composite\"`, or remove `guards`".into()));
            }
            let config = p
                .get("guard_config")
                .and_then(Value::as_object)
                .cloned()
                .unwrap_or_default();
            g.leaf(
                guard_name,
                &config,
                &format!("{at}/guard"),
                &format!("{at}/guard_config"),
                true,
            )
        };
        if g.used_first_dep {
            if let Some(k) = requires[i].first() {
                if !st.deps.contains(k) {
                    st.deps.push(*k);
                }
            }
        }
        if p.contains_key("output_type") {
            cx.err(
                wid,
                Some(pid),
                format!("{at}/output_type"),
                "an `output_type` names a Python class that atomicguard parses the answer into; guardflow cannot read that class's fields from the workflow",
                Some("remove `output_type` and import again; then declare the type in guardflow (`type T = { … }`) and make the action's output `Json<T>`".into()),
            );
        }
        if st.spec {
            used_spec = true;
        }
        let mut params: Vec<(String, &'static str)> = Vec::new();
        if st.spec {
            params.push(("specification".into(), "Text"));
        }
        // required pairs first, in `requires` order, then the others used
        let mut dep_order: Vec<usize> = requires[i]
            .iter()
            .copied()
            .filter(|k| st.deps.contains(k))
            .collect();
        dep_order.extend(st.deps.iter().copied().filter(|k| !requires[i].contains(k)));
        for k in dep_order {
            params.push((labels[ids[k].as_str()].clone(), "Code<python>"));
        }
        let (Some(guard), Some(generator)) = (guard, generator) else {
            continue;
        };
        let action = if single {
            ident(pid, false)
        } else {
            ident(&format!("{id}_{pid}"), false)
        };
        pairs.push(Pair {
            id: pid.to_string(),
            action: unique(action, callables),
            label: labels[pid].clone(),
            description: p
                .get("description")
                .and_then(Value::as_str)
                .map(str::to_string),
            role,
            generator,
            prompt,
            params,
            guard,
            rmax,
            feedback_all: st.feedback,
            max_tokens,
        });
    }
    if cx.errors.len() > errors_before {
        return None;
    }
    let task = unique(ident(if single { &title } else { id }, true), callables);
    let label_of = |i: usize| labels[ids[i].as_str()].clone();
    let ordering = if n > 1 {
        Some(ordering(&requires, &before, &order, &label_of))
    } else {
        None
    };
    let sinks: Vec<usize> = (0..n)
        .filter(|&k| !before.iter().any(|b| b.contains(&k)))
        .collect();
    let result = match sinks.as_slice() {
        [one] => Some(label_of(*one)),
        _ => None,
    };
    Some(Workflow {
        id: id.to_string(),
        title,
        description: w
            .get("description")
            .and_then(Value::as_str)
            .map(str::to_string),
        task,
        spec: if used_spec { Some(spec) } else { None },
        pairs,
        ordering,
        result,
    })
}

/// What a pair's prompt uses.
#[derive(Default)]
struct State {
    /// Earlier pairs whose outputs it interpolates.
    deps: Vec<usize>,
    spec: bool,
    feedback: bool,
}

/// Resolves the placeholders of one action pair's texts.
struct Resolver<'a> {
    ids: &'a [&'a String],
    before: &'a [BTreeSet<usize>],
    labels: &'a HashMap<&'a str, String>,
    i: usize,
    wid: &'a str,
    pid: &'a str,
    at: &'a str,
}

impl Resolver<'_> {
    /// The pair a placeholder names (by id, or as atomicguard's dependency
    /// key: the id without `g_`/`ap_`, either with `_code`): `Ok` when it
    /// comes before this pair, `Err` with its id(s) when not; `None` when
    /// it names no pair.
    fn pair(&self, name: &str) -> Option<Result<usize, String>> {
        let mut found: Vec<usize> = Vec::new();
        for (k, other) in self.ids.iter().enumerate() {
            if other.as_str() == name {
                found = vec![k];
                break;
            }
            let key = other
                .strip_prefix("g_")
                .or_else(|| other.strip_prefix("ap_"))
                .unwrap_or(other);
            let forms = [
                format!("{other}_code"),
                key.to_string(),
                format!("{key}_code"),
            ];
            if forms.iter().any(|f| f == name) {
                found.push(k);
            }
        }
        let before = &self.before[self.i];
        match found.as_slice() {
            [] => None,
            [k] if before.contains(k) => Some(Ok(*k)),
            [k] => Some(Err(self.ids[*k].to_string())),
            _ => {
                let ks: Vec<usize> = found
                    .iter()
                    .copied()
                    .filter(|k| before.contains(k))
                    .collect();
                if let [k] = ks.as_slice() {
                    Some(Ok(*k))
                } else {
                    let names: Vec<&str> = found.iter().map(|k| self.ids[*k].as_str()).collect();
                    Some(Err(names.join(" or ")))
                }
            }
        }
    }

    /// `text` into `out`: a required pair's output, the specification and
    /// the feedback are interpolated; any other `{name}` stays text.
    fn template(&self, cx: &mut Ctx, st: &mut State, text: &str, field: &str, out: &mut Vec<Part>) {
        let (wid, pid, at) = (Some(self.wid), self.pid, self.at);
        for piece in placeholders(text) {
            let name = match piece {
                Piece::Text(t) => {
                    push_text(out, &t);
                    continue;
                }
                Piece::Name(name) => name,
            };
            if name == "feedback" {
                st.feedback = true;
                out.push(Part::Interp("feedback".into()));
            } else if name == "specification" || name == "spec" {
                st.spec = true;
                out.push(Part::Interp("specification".into()));
            } else {
                match self.pair(&name) {
                    Some(Ok(k)) => {
                        if !st.deps.contains(&k) {
                            st.deps.push(k);
                        }
                        out.push(Part::Interp(self.labels[self.ids[k].as_str()].clone()));
                    }
                    Some(Err(other)) => cx.err(
                        wid,
                        Some(pid),
                        format!("{at}/{field}"),
                        format!("the placeholder `{{{name}}}` names the output of `{other}`, which `{pid}` does not require, so it may not exist when `{pid}` runs"),
                        Some(format!("add `{other}` to the requires of `{pid}`")),
                    ),
                    None => {
                        let note = format!(
                            "workflow `{}`, action pair `{pid}`: `{{{name}}}` in `{field}` names nothing atomicguard fills in, so it is kept as text",
                            self.wid
                        );
                        if !cx.notes.contains(&note) {
                            cx.notes.push(note);
                        }
                        push_text(out, &format!("{{{name}}}"));
                    }
                }
            }
        }
    }
}

#[allow(clippy::too_many_arguments)]
fn pair_generator(
    cx: &mut Ctx,
    gens: &mut Gens,
    wid: Option<&str>,
    pid: &str,
    at: &str,
    p: &Map<String, Value>,
    model: &str,
    provider: &str,
    max_tokens: &mut Option<u64>,
) -> Option<String> {
    let kind = p.get("generator").and_then(Value::as_str);
    let provider = match kind {
        None => provider.to_string(),
        Some("OllamaGenerator") => "ollama".to_string(),
        Some("HuggingFaceGenerator") => "huggingface".to_string(),
        Some(other) => {
            cx.err(
                wid,
                Some(pid),
                format!("{at}/generator"),
                format!("the generator `{other}` has no guardflow equivalent: atomicguard loads it as a Python class (an entry point), and guardflow cannot run Python generator classes; it knows OllamaGenerator and HuggingFaceGenerator (the `llm` generator)"),
                Some("remove `generator` so the pair uses the workflow's `model`, or set it to OllamaGenerator; a program of your own can be bound after import with `generator g = cmd(\"…\")`".into()),
            );
            return None;
        }
    };
    let (mut base_url, mut key_env) = provider_endpoint(&provider);
    let mut g = Generator {
        name: String::new(),
        provider: provider.clone(),
        model: model.to_string(),
        base_url: None,
        api_key_env: None,
        temperature: None,
        timeout_ms: None,
    };
    let mut ok = true;
    if let Some(config) = p.get("generator_config").and_then(Value::as_object) {
        for (k, v) in config {
            let field = format!("{at}/generator_config/{}", esc(k));
            let mut bad = |cx: &mut Ctx, what: &str| {
                cx.err(
                    wid,
                    Some(pid),
                    field.clone(),
                    format!("`{k}` must be {what}"),
                    None,
                );
                ok = false;
            };
            match k.as_str() {
                "model" => match v.as_str() {
                    Some(m) => g.model = m.to_string(),
                    None => bad(cx, "a string"),
                },
                "base_url" => match v.as_str() {
                    Some(u) => {
                        if u.contains("ollama.com") {
                            key_env = Some("OLLAMA_API_KEY".into());
                        }
                        base_url = Some(u.to_string());
                    }
                    None => bad(cx, "a string"),
                },
                "temperature" => match v.as_f64().filter(|t| (0.0..=2.0).contains(t)) {
                    Some(t) => g.temperature = Some(t),
                    None => bad(cx, "a number from 0 to 2"),
                },
                "timeout" => match seconds_to_ms(v) {
                    Some(ms) => g.timeout_ms = Some(ms),
                    None => bad(cx, "a number of seconds above 0 (at most a day)"),
                },
                "max_tokens" => match v.as_u64().filter(|n| *n >= 1) {
                    Some(n) => *max_tokens = Some(n),
                    None => bad(cx, "an integer of at least 1"),
                },
                "api_key" => {
                    cx.err(
                        wid,
                        Some(pid),
                        field.clone(),
                        "an API key written in the workflow has no guardflow equivalent: guardflow never holds a key in a workflow, only the name of the variable that holds it",
                        Some("remove `api_key` and set the provider's variable (OPENAI_API_KEY, OPENROUTER_API_KEY, HF_TOKEN, OLLAMA_API_KEY) when running".into()),
                    );
                    ok = false;
                }
                other => {
                    cx.err(
                        wid,
                        Some(pid),
                        field.clone(),
                        format!("the generator setting `{other}` has no guardflow equivalent (guardflow reads model, base_url, temperature, timeout and max_tokens)"),
                        Some(format!("remove `{other}` and import again")),
                    );
                    ok = false;
                }
            }
        }
    }
    if !ok {
        return None;
    }
    g.base_url = base_url;
    g.api_key_env = key_env;
    Some(gens.get(g))
}

struct GuardCx<'a, 'b> {
    cx: &'a mut Ctx<'b>,
    wid: Option<&'a str>,
    pid: &'a str,
    parsed: &'a mut Parsed,
    human_title: Option<String>,
    first_dep: Option<String>,
    used_first_dep: bool,
}

impl GuardCx<'_, '_> {
    fn err(&mut self, at: String, message: impl Into<String>, help: Option<String>) {
        let (wid, pid) = (self.wid, self.pid);
        self.cx.err(wid, Some(pid), at, message, help);
    }

    /// `guards`: a list of names, or `{compose, policy, guards}`.
    fn composite(&mut self, spec: &Value, at: &str) -> Option<GExpr> {
        let (list, compose, policy, list_at) = match spec {
            Value::Array(a) => (a.as_slice(), "sequential", "all_pass", at.to_string()),
            Value::Object(o) => (
                o.get("guards")
                    .and_then(Value::as_array)
                    .map(Vec::as_slice)
                    .unwrap_or(&[]),
                o.get("compose")
                    .and_then(Value::as_str)
                    .unwrap_or("sequential"),
                o.get("policy")
                    .and_then(Value::as_str)
                    .unwrap_or("all_pass"),
                format!("{at}/guards"),
            ),
            _ => (&[][..], "sequential", "all_pass", at.to_string()),
        };
        if list.is_empty() {
            self.err(list_at, "a composite guard with no guards has nothing to check (atomicguard refuses it too)", Some("list the guards it combines".into()));
            return None;
        }
        let mut items = Vec::new();
        let mut ok = true;
        for (j, g) in list.iter().enumerate() {
            let here = format!("{list_at}/{j}");
            let item = match g {
                Value::String(name) => self.leaf(name, &Map::new(), &here, &here, false),
                Value::Object(o) if o.contains_key("guards") => self.composite(g, &here),
                Value::Object(o) => {
                    let name = o.get("type").and_then(Value::as_str).unwrap_or("");
                    let config = o
                        .get("config")
                        .and_then(Value::as_object)
                        .cloned()
                        .unwrap_or_default();
                    self.leaf(
                        name,
                        &config,
                        &format!("{here}/type"),
                        &format!("{here}/config"),
                        false,
                    )
                }
                _ => None,
            };
            match item {
                Some(e) => items.push(e),
                None => ok = false,
            }
        }
        if !ok {
            return None;
        }
        Some(match (policy, compose) {
            ("all_pass", "parallel") => GExpr::Form("par", items),
            ("all_pass", _) => {
                if items.len() == 1 {
                    items.pop()?
                } else {
                    GExpr::And(items)
                }
            }
            ("any_pass", _) => GExpr::Form("any", items),
            _ => GExpr::Form("majority", items),
        })
    }

    /// One guard type with its configuration.
    fn leaf(
        &mut self,
        name: &str,
        config: &Map<String, Value>,
        at: &str,
        config_at: &str,
        top: bool,
    ) -> Option<GExpr> {
        // keys a type takes; the rest is refused
        let allowed: &[&str] = match name {
            "syntax" | "import" => &[],
            "dynamic_test" => &["timeout", "test_code"],
            "human" => &["prompt_title", "human_prompt_title"],
            "type" => &["strict"],
            "composite" => {
                self.err(
                    at.to_string(),
                    "a `composite` guard inside a list has no `guards` of its own",
                    Some("write it as an object: {\"compose\": …, \"guards\": [...]}".into()),
                );
                return None;
            }
            other => {
                self.err(
                    at.to_string(),
                    format!("the guard type `{other}` has no guardflow equivalent: atomicguard finds it among Python guard classes registered by the application, and guardflow cannot run those; the types guardflow maps are {GUARD_TYPES}"),
                    Some("write the check as a guardflow guard (for a script of yours, the `command` guard: docs/stdlib.md) and use it in the imported file, or change the guard type and import again".into()),
                );
                return None;
            }
        };
        let mut ok = true;
        for k in config.keys() {
            if !(allowed.contains(&k.as_str()) || top && k == "human_prompt_title") {
                let takes = if allowed.is_empty() {
                    "takes no configuration".to_string()
                } else {
                    format!(
                        "takes only {}",
                        allowed
                            .iter()
                            .map(|a| format!("`{a}`"))
                            .collect::<Vec<_>>()
                            .join(", ")
                    )
                };
                let help = if name == "dynamic_test" && k == "test_file" {
                    "guardflow import reads no file a workflow names: give the tests in `test_code`, or remove `test_file`, import, and declare `input tests: Code<python> = file(\"…\")` to pass to `dynamic_test`".to_string()
                } else {
                    format!("remove `{k}` and import again")
                };
                self.err(
                    format!("{config_at}/{}", esc(k)),
                    format!("the `{name}` guard {takes}; `{k}` has no guardflow equivalent"),
                    Some(help),
                );
                ok = false;
            }
        }
        if !ok {
            return None;
        }
        match name {
            "syntax" => {
                self.parsed.std_guards.insert("python_syntax");
                Some(GExpr::Call("python_syntax".into()))
            }
            "import" => {
                self.parsed.std_guards.insert("command");
                self.parsed.names_defined = true;
                Some(GExpr::Call("names_defined".into()))
            }
            "type" => {
                self.parsed.std_guards.insert("mypy");
                match config.get("strict") {
                    None | Some(Value::Bool(false)) => Some(GExpr::Call("mypy".into())),
                    Some(Value::Bool(true)) => Some(GExpr::Call("mypy(strict: true)".into())),
                    Some(_) => {
                        self.err(
                            format!("{config_at}/strict"),
                            "`strict` must be true or false",
                            None,
                        );
                        None
                    }
                }
            }
            "human" => {
                self.parsed.std_guards.insert("human");
                let title = config
                    .get("prompt_title")
                    .or_else(|| config.get("human_prompt_title"))
                    .and_then(Value::as_str)
                    .map(str::to_string)
                    .or_else(|| self.human_title.clone())
                    .unwrap_or_else(|| DEFAULT_HUMAN_TITLE.to_string());
                let prompt = format!("{title}: approve?");
                Some(GExpr::Call(format!(
                    "human(prompt: {})",
                    super::emit::string_literal(&[Part::Text(prompt)])
                )))
            }
            "dynamic_test" => {
                self.parsed.std_guards.insert("pytest");
                self.parsed.dynamic_test = true;
                let tests = match config.get("test_code") {
                    Some(Value::String(code)) => match super::emit::code_literal(code) {
                        Ok(lit) => lit,
                        Err(why) => {
                            self.err(format!("{config_at}/test_code"), why, Some("put the tests in an action pair this one requires, or remove `\"\"\"` from them".into()));
                            return None;
                        }
                    },
                    Some(_) => {
                        self.err(
                            format!("{config_at}/test_code"),
                            "`test_code` must be a string",
                            None,
                        );
                        return None;
                    }
                    None => match &self.first_dep {
                        Some(d) => {
                            self.used_first_dep = true;
                            d.clone()
                        }
                        None => {
                            self.err(
                                at.to_string(),
                                "`dynamic_test` has no tests to run: atomicguard takes them from the first action pair in `requires`, or from `guard_config.test_code`, and this pair has neither",
                                Some("require the action pair that writes the tests, or give them in `guard_config.test_code`".into()),
                            );
                            return None;
                        }
                    },
                };
                let timeout = match config.get("timeout") {
                    None => String::new(),
                    Some(v) => match seconds_to_ms(v) {
                        Some(ms) => format!(", timeout: {}", duration(ms)),
                        None => {
                            self.err(
                                format!("{config_at}/timeout"),
                                "`timeout` must be a number of seconds above 0 (at most a day)",
                                None,
                            );
                            return None;
                        }
                    },
                };
                Some(GExpr::Call(format!("dynamic_test({tests}{timeout})")))
            }
            _ => None,
        }
    }
}

/// A duration literal for `ms` milliseconds.
pub fn duration(ms: u64) -> String {
    if ms.is_multiple_of(1000) {
        format!("{}s", ms / 1000)
    } else {
        format!("{ms}ms")
    }
}

fn push_text(out: &mut Vec<Part>, t: &str) {
    if t.is_empty() {
        return;
    }
    if let Some(Part::Text(last)) = out.last_mut() {
        last.push_str(t);
    } else {
        out.push(Part::Text(t.to_string()));
    }
}

enum Piece {
    Text(String),
    Name(String),
}

/// `{name}` placeholders (a Python identifier between single braces);
/// `{{` and everything else is text, as atomicguard sends it.
fn placeholders(text: &str) -> Vec<Piece> {
    let mut out = Vec::new();
    let mut buf = String::new();
    let mut rest = text;
    while let Some(pos) = rest.find('{') {
        buf.push_str(&rest[..pos]);
        let after = &rest[pos + 1..];
        if let Some(stripped) = after.strip_prefix('{') {
            buf.push_str("{{");
            rest = stripped;
            continue;
        }
        let end = after.find('}');
        let name = end.map(|e| &after[..e]);
        match name {
            Some(n) if is_identifier(n) => {
                if !buf.is_empty() {
                    out.push(Piece::Text(std::mem::take(&mut buf)));
                }
                out.push(Piece::Name(n.to_string()));
                rest = &after[n.len() + 1..];
            }
            _ => {
                buf.push('{');
                rest = after;
            }
        }
    }
    buf.push_str(rest);
    if !buf.is_empty() {
        out.push(Piece::Text(buf));
    }
    out
}

fn is_identifier(s: &str) -> bool {
    let mut chars = s.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// The feedback wrapper, read as Python's `str.format` reads it: `{{`
/// and `}}` are braces, `{feedback}` the feedback; any other field is
/// the error (its name).
fn wrapper_parts(text: &str) -> Result<Vec<Part>, String> {
    let mut out = Vec::new();
    let mut chars = text.char_indices().peekable();
    let mut buf = String::new();
    while let Some((i, c)) = chars.next() {
        match c {
            '{' if chars.peek().map(|p| p.1) == Some('{') => {
                chars.next();
                buf.push('{');
            }
            '}' if chars.peek().map(|p| p.1) == Some('}') => {
                chars.next();
                buf.push('}');
            }
            '{' => {
                let rest = &text[i + 1..];
                let end = rest.find('}').ok_or_else(|| rest.to_string())?;
                let name = &rest[..end];
                if name != "feedback" {
                    return Err(name.to_string());
                }
                if !buf.is_empty() {
                    out.push(Part::Text(std::mem::take(&mut buf)));
                }
                out.push(Part::Interp("feedback".into()));
                for _ in 0..name.chars().count() + 1 {
                    chars.next();
                }
            }
            c => buf.push(c),
        }
    }
    if !buf.is_empty() {
        out.push(Part::Text(buf));
    }
    Ok(out)
}

/// An order of the pairs in which each comes after what it requires
/// (ties by position), or `None` for a cycle.
fn topo(requires: &[Vec<usize>]) -> Option<Vec<usize>> {
    let n = requires.len();
    let mut done = vec![false; n];
    let mut order = Vec::with_capacity(n);
    while order.len() < n {
        let next = (0..n).find(|&i| !done[i] && requires[i].iter().all(|&k| done[k]))?;
        done[next] = true;
        order.push(next);
    }
    Some(order)
}

/// One cycle of the requires, for the message.
fn cycle(requires: &[Vec<usize>]) -> Vec<usize> {
    // walk from a pair left over by `topo`, always into one left over
    let n = requires.len();
    let mut done = vec![false; n];
    while let Some(next) = (0..n).find(|&i| !done[i] && requires[i].iter().all(|&k| done[k])) {
        done[next] = true;
    }
    let Some(start) = (0..n).find(|&i| !done[i]) else {
        return Vec::new();
    };
    let mut path = vec![start];
    let mut at = start;
    for _ in 0..=n {
        let Some(&k) = requires[at].iter().find(|&&k| !done[k]) else {
            break;
        };
        if let Some(pos) = path.iter().position(|&p| p == k) {
            let mut cyc = path[pos..].to_vec();
            cyc.reverse();
            return cyc;
        }
        path.push(k);
        at = k;
    }
    path
}

/// For each pair, every pair that must finish before it (the transitive
/// requires).
fn closure(requires: &[Vec<usize>]) -> Vec<BTreeSet<usize>> {
    let n = requires.len();
    let order = topo(requires).unwrap_or_default();
    let mut before: Vec<BTreeSet<usize>> = vec![BTreeSet::new(); n];
    for &i in &order {
        let mut set = BTreeSet::new();
        for &k in &requires[i] {
            set.insert(k);
            set.extend(before[k].iter().copied());
        }
        before[i] = set;
    }
    before
}

/// The ordering expression: sequences and fork-joins where the requires
/// are series-parallel, else a partial order of the direct requires.
fn ordering(
    requires: &[Vec<usize>],
    before: &[BTreeSet<usize>],
    order: &[usize],
    label: &dyn Fn(usize) -> String,
) -> String {
    let lt = |a: usize, b: usize| before[b].contains(&a);
    if let Some(e) = series_parallel(order, &lt, label, true) {
        return e;
    }
    let mut items = Vec::new();
    let mut constrained = vec![false; requires.len()];
    for &i in order {
        for &k in &requires[i] {
            // only the edges the others do not imply
            let implied = requires[i]
                .iter()
                .any(|&m| m != k && before[m].contains(&k));
            if !implied {
                items.push(format!("{} < {}", label(k), label(i)));
                constrained[i] = true;
                constrained[k] = true;
            }
        }
    }
    for &i in order {
        if !constrained[i] {
            items.push(label(i));
        }
    }
    format!("({})", items.join(", "))
}

/// `nodes` as a series-parallel expression, or `None` when their order
/// is not series-parallel (it holds an N: a < c, b < c, b < d only).
fn series_parallel(
    nodes: &[usize],
    lt: &dyn Fn(usize, usize) -> bool,
    label: &dyn Fn(usize) -> String,
    top: bool,
) -> Option<String> {
    if nodes.len() == 1 {
        return Some(label(nodes[0]));
    }
    let comparable = |a: usize, b: usize| lt(a, b) || lt(b, a);
    // parallel: the components of the comparability graph
    let parts = components(nodes, &comparable);
    if parts.len() > 1 {
        let mut items = Vec::new();
        for p in &parts {
            items.push(series_parallel(p, lt, label, false)?);
        }
        return Some(format!("({})", items.join(" || ")));
    }
    // series: the components of the incomparability graph, in order
    let mut parts = components(nodes, &|a, b| !comparable(a, b));
    if parts.len() < 2 {
        return None;
    }
    parts.sort_by(|x, y| {
        if lt(x[0], y[0]) {
            std::cmp::Ordering::Less
        } else {
            std::cmp::Ordering::Greater
        }
    });
    for w in parts.windows(2) {
        if !w[0].iter().all(|&a| w[1].iter().all(|&b| lt(a, b))) {
            return None;
        }
    }
    let mut items = Vec::new();
    for p in &parts {
        items.push(series_parallel(p, lt, label, false)?);
    }
    let _ = top;
    Some(format!("({})", items.join(" ; ")))
}

/// Connected components of `nodes` under `edge`, each in `nodes`' order.
fn components(nodes: &[usize], edge: &dyn Fn(usize, usize) -> bool) -> Vec<Vec<usize>> {
    let mut comp = vec![usize::MAX; nodes.len()];
    let mut count = 0;
    for s in 0..nodes.len() {
        if comp[s] != usize::MAX {
            continue;
        }
        comp[s] = count;
        let mut stack = vec![s];
        while let Some(x) = stack.pop() {
            for y in 0..nodes.len() {
                if comp[y] == usize::MAX && edge(nodes[x], nodes[y]) {
                    comp[y] = count;
                    stack.push(y);
                }
            }
        }
        count += 1;
    }
    (0..count)
        .map(|c| {
            (0..nodes.len())
                .filter(|&i| comp[i] == c)
                .map(|i| nodes[i])
                .collect()
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placeholders_are_identifiers_in_single_braces() {
        let p = placeholders("a {x} {{y}} {not one} {z");
        let names: Vec<String> = p
            .iter()
            .filter_map(|p| match p {
                Piece::Name(n) => Some(n.clone()),
                Piece::Text(_) => None,
            })
            .collect();
        assert_eq!(names, vec!["x".to_string()]);
    }

    #[test]
    fn the_wrapper_reads_as_str_format() {
        assert_eq!(
            wrapper_parts("A {{x}}:\n{feedback}!").unwrap(),
            vec![
                Part::Text("A {x}:\n".into()),
                Part::Interp("feedback".into()),
                Part::Text("!".into())
            ]
        );
        assert_eq!(wrapper_parts("{other}").unwrap_err(), "other");
    }

    fn sp(requires: Vec<Vec<usize>>) -> String {
        let before = closure(&requires);
        let order = topo(&requires).unwrap();
        let names = ["a", "b", "c", "d", "e"];
        ordering(&requires, &before, &order, &|i| names[i].to_string())
    }

    #[test]
    fn orderings_are_series_parallel_when_they_can_be() {
        assert_eq!(sp(vec![vec![], vec![0], vec![1]]), "(a ; b ; c)");
        assert_eq!(
            sp(vec![vec![], vec![0], vec![0], vec![1, 2]]),
            "(a ; (b || c) ; d)"
        );
        assert_eq!(sp(vec![vec![], vec![]]), "(a || b)");
        // the N: c after a and b, d after b only
        assert_eq!(
            sp(vec![vec![], vec![], vec![0, 1], vec![1]]),
            "(a < c, b < c, b < d)"
        );
        // an implied edge is left out
        assert_eq!(sp(vec![vec![], vec![0], vec![0, 1]]), "(a ; b ; c)");
    }

    #[test]
    fn idents_are_names_guardflow_accepts() {
        assert_eq!(
            ident("TDD Stack - Fully Automated (HF)", true),
            "tdd_stack_fully_automated_hf"
        );
        assert_eq!(ident("2nd", false), "_2nd");
        assert_eq!(ident("task", false), "task_");
        assert_eq!(ident("", false), "unnamed");
    }
}
