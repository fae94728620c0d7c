//! Where a model or a person, rather than a deterministic check, decides
//! whether a workflow moves on: judges (guards that ask a generator),
//! `human` guards, actions a person writes, in every action's `:guard`
//! and `:pre-guard` (an effect's approval) and `:pre`, and in methods'
//! `:pre`. A judge whose question is one a deterministic guard answers
//! (syntax, JSON validity, a schema, imports, length, secrets) is
//! flagged with that guard. `guardflow deciders` prints the list.

use serde::Serialize;

use super::ir::{ExternKind, GuardExpr, GuardRef, Operand, Program, Template, TemplatePart, Value};

/// Who decides.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Who {
    Model,
    Person,
}

/// One place where a model or a person decides.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Decider {
    /// `action NAME` or `task NAME, method NAME`.
    pub at: String,
    /// `guard`, `pre-guard`, `pre`, `generate`.
    pub place: &'static str,
    pub who: Who,
    /// The deciding guard (`judge`, `human`, a host's) or generator.
    pub name: String,
    /// The user guards it is reached through, outermost first.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub via: Vec<String>,
    /// The generator a judge asks, when it is named.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub generator: Option<String>,
    /// The question asked (interpolations as `{name}`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub question: Option<String>,
    /// A judge's most generator calls per evaluation.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub calls: Option<u64>,
    /// A deterministic guard that could decide instead, and why.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub replace_with: Option<Replacement>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Replacement {
    pub guard: &'static str,
    pub why: &'static str,
}

/// Every decider of `program`, in the order of its actions and tasks.
pub fn deciders(program: &Program) -> Vec<Decider> {
    let mut out = Vec::new();
    for a in &program.actions {
        let at = format!("action {}", a.name);
        let names: Vec<&str> = a.params.iter().map(|p| p.name.as_str()).collect();
        let inst = program.generators.get(a.generator.index());
        if let Some(inst) = inst {
            let kind = &program.externs[inst.kind.index()];
            if kind.std && kind.name == "human" {
                out.push(Decider {
                    at: at.clone(),
                    place: "generate",
                    who: Who::Person,
                    name: "human".to_string(),
                    via: Vec::new(),
                    generator: None,
                    question: None,
                    calls: None,
                    replace_with: None,
                });
            }
        }
        let places = [
            ("pre", a.pre.as_ref()),
            ("pre-guard", a.pre_guard.as_ref()),
            ("guard", Some(&a.guard)),
        ];
        for (place, g) in places {
            if let Some(g) = g {
                let walk = Walk {
                    program,
                    at: &at,
                    place,
                };
                walk.expr(g, &Names::Params(&names), &mut Vec::new(), &mut out);
            }
        }
    }
    for t in &program.tasks {
        let names: Vec<&str> = t.params.iter().map(|p| p.name.as_str()).collect();
        for m in &t.methods {
            if let Some(pre) = &m.pre {
                let at = format!("task {}, method {}", t.name, m.name);
                let walk = Walk {
                    program,
                    at: &at,
                    place: "pre",
                };
                walk.expr(pre, &Names::Params(&names), &mut Vec::new(), &mut out);
            }
        }
    }
    out
}

/// How the parameters an operand reads are named where it is written.
enum Names<'a> {
    /// The enclosing action's or task's parameters.
    Params(&'a [&'a str]),
    /// A guard definition's parameters, bound to the caller's operands.
    Call {
        params: Vec<String>,
        args: &'a [Operand],
        outer: &'a Names<'a>,
    },
}

struct Walk<'a> {
    program: &'a Program,
    at: &'a str,
    place: &'static str,
}

impl Walk<'_> {
    fn expr(
        &self,
        g: &GuardExpr,
        names: &Names<'_>,
        via: &mut Vec<String>,
        out: &mut Vec<Decider>,
    ) {
        match g {
            GuardExpr::Call { guard, args, .. } => match guard {
                GuardRef::Extern { id } => self.call(id.index(), args, names, via, out),
                GuardRef::User { id } => {
                    let Some(def) = self.program.guards.get(id.index()) else {
                        return;
                    };
                    // definitions nest at most `MAX_DEF_DEPTH` deep (E0217)
                    via.push(def.name.clone());
                    let inner = Names::Call {
                        params: def.params.iter().map(|p| p.name.clone()).collect(),
                        args,
                        outer: names,
                    };
                    self.expr(&def.body, &inner, via, out);
                    via.pop();
                }
            },
            // typed predicates decide from values: nobody is asked
            GuardExpr::Bool { .. } | GuardExpr::Compare { .. } | GuardExpr::Value { .. } => {}
            GuardExpr::Not { expr, .. } => self.expr(expr, names, via, out),
            GuardExpr::And { exprs, .. }
            | GuardExpr::Or { exprs, .. }
            | GuardExpr::Combinator { exprs, .. } => {
                for e in exprs {
                    self.expr(e, names, via, out);
                }
            }
        }
    }

    fn call(
        &self,
        id: usize,
        args: &[Operand],
        names: &Names<'_>,
        via: &[String],
        out: &mut Vec<Decider>,
    ) {
        let e = &self.program.externs[id];
        if e.kind != ExternKind::Guard {
            return;
        }
        let person = e.std && e.name == "human";
        if !person && !e.is_judge() {
            return;
        }
        let text_arg = |name: &str| {
            let i = e.params.iter().position(|p| p.name == name)?;
            Some(self.text(args.get(i)?, names))
        };
        let (generator, question, calls) = if person {
            (None, text_arg("prompt"), None)
        } else {
            let generator = e
                .generator_params()
                .next()
                .and_then(|i| args.get(i))
                .and_then(|op| self.generator(op, names));
            let question = e
                .params
                .iter()
                .position(|p| p.ty == super::ir::Ty::Text)
                .and_then(|i| args.get(i))
                .map(|op| self.text(op, names));
            (generator, question, e.judge_calls(args))
        };
        let replace_with = match (person, &question) {
            (false, Some(q)) => replaceable(q),
            _ => None,
        };
        out.push(Decider {
            at: self.at.to_string(),
            place: self.place,
            who: if person { Who::Person } else { Who::Model },
            name: e.name.clone(),
            via: via.to_vec(),
            generator,
            question,
            calls,
            replace_with,
        });
    }

    /// The generator an operand names, through guard definitions.
    fn generator(&self, op: &Operand, names: &Names<'_>) -> Option<String> {
        match (op, names) {
            (Operand::Generator { generator }, _) => self
                .program
                .generators
                .get(generator.index())
                .map(|g| g.name.clone()),
            (Operand::Param { index, .. }, Names::Call { args, outer, .. }) => {
                self.generator(args.get(*index as usize)?, outer)
            }
            (Operand::Param { index, .. }, Names::Params(params)) => {
                params.get(*index as usize).map(|p| format!("{{{p}}}"))
            }
            _ => None,
        }
    }

    /// An operand as text: constants as written, values as `{name}`.
    fn text(&self, op: &Operand, names: &Names<'_>) -> String {
        match op {
            Operand::Const {
                value: Value::Text(t),
            } => t.clone(),
            Operand::Template { template } => self.template(template, names),
            other => format!("{{{}}}", self.name(other, names)),
        }
    }

    fn template(&self, t: &Template, names: &Names<'_>) -> String {
        let mut s = String::new();
        for part in &t.parts {
            match part {
                TemplatePart::Text { text } => s.push_str(text),
                TemplatePart::Value { operand } => {
                    s.push('{');
                    s.push_str(&self.name(operand, names));
                    s.push('}');
                }
                TemplatePart::Feedback => s.push_str("{feedback}"),
                TemplatePart::Previous => s.push_str("{previous}"),
                TemplatePart::History => s.push_str("{history}"),
            }
        }
        s
    }

    /// What an operand reads, as it is named where the action or task
    /// is written.
    fn name(&self, op: &Operand, names: &Names<'_>) -> String {
        let with_fields = |base: String, fields: &[String]| {
            std::iter::once(base)
                .chain(fields.iter().cloned())
                .collect::<Vec<_>>()
                .join(".")
        };
        match (op, names) {
            (Operand::Param { index, fields }, Names::Params(params)) => with_fields(
                params.get(*index as usize).unwrap_or(&"?").to_string(),
                fields,
            ),
            (
                Operand::Param { index, fields },
                Names::Call {
                    params,
                    args,
                    outer,
                },
            ) => match args.get(*index as usize) {
                Some(arg) if fields.is_empty() => self.name(arg, outer),
                _ => with_fields(
                    params.get(*index as usize).cloned().unwrap_or_default(),
                    fields,
                ),
            },
            (Operand::Input { input, fields }, _) => with_fields(
                self.program
                    .inputs
                    .get(input.index())
                    .map_or_else(String::new, |i| i.name.clone()),
                fields,
            ),
            (Operand::Template { template }, _) => self.template(template, names),
            (
                Operand::Const {
                    value: Value::Text(t),
                },
                _,
            ) => t.clone(),
            _ => "…".to_string(),
        }
    }
}

/// The questions a deterministic guard answers: (words any of which the
/// question holds, the guard, why).
const DETERMINISTIC: &[(&[&str], &str, &str)] = &[
    (
        &["json schema", "schema"],
        "json_schema",
        "whether JSON matches a schema is decided by a validator (or declare the output `Json<T>`)",
    ),
    (
        &[
            "valid json",
            "well-formed json",
            "json syntax",
            "parse as json",
            "parses as json",
            "is json",
        ],
        "json_syntax",
        "whether text is JSON is decided by a parser",
    ),
    (
        &[
            "syntax",
            "syntactically",
            "compile",
            "compiles",
            "parse",
            "parses",
        ],
        "syntax",
        "whether code parses is decided by a parser (`syntax(lang)`, `python_syntax`, …)",
    ),
    (
        &["import", "imports"],
        "imports_allowed",
        "which modules code imports is read from its syntax tree",
    ),
    (
        &["secret", "api key", "password", "token"],
        "no_secrets",
        "keys and tokens are found by their patterns",
    ),
    (
        &[
            "characters long",
            "words long",
            "too long",
            "at most",
            "length",
            "lines long",
        ],
        "max_len",
        "length is counted (`max_len`, `max_lines`)",
    ),
    (
        &[
            "tests pass",
            "test pass",
            "pass the tests",
            "passes the tests",
        ],
        "pytest",
        "whether tests pass is decided by running them",
    ),
];

/// The deterministic guard a judge's question calls for, if its
/// question is one.
pub fn replaceable(question: &str) -> Option<Replacement> {
    let q = question.to_lowercase();
    let words: Vec<&str> = q
        .split(|c: char| !c.is_alphanumeric() && c != '_' && c != '-')
        .filter(|w| !w.is_empty())
        .collect();
    let joined = words.join(" ");
    DETERMINISTIC.iter().find_map(|(keys, guard, why)| {
        keys.iter()
            .any(|k| {
                if k.contains(' ') {
                    joined.contains(k)
                } else {
                    words.contains(k)
                }
            })
            .then_some(Replacement { guard, why })
    })
}

#[cfg(test)]
mod tests {
    use super::replaceable;

    #[test]
    fn questions_about_syntax_schema_and_secrets_are_flagged() {
        let guard = |q: &str| replaceable(q).map(|r| r.guard);
        assert_eq!(guard("Is this valid JSON?"), Some("json_syntax"));
        assert_eq!(guard("Does it match the JSON schema?"), Some("json_schema"));
        assert_eq!(guard("Does the Python code compile?"), Some("syntax"));
        assert_eq!(guard("Does it leak an API key?"), Some("no_secrets"));
        assert_eq!(guard("Does the code meet the spec: {spec}?"), None);
        assert_eq!(guard("Is the summary faithful to the source?"), None);
    }
}
