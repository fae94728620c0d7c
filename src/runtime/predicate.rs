//! Typed predicates (`v.score >= 0.8`, `len(p.items) == 0`, `v.ok`):
//! decided from values, with no guard or generator call. The checker typed
//! both sides; a value of another shape at run time (a `Json<T>` artifact
//! the model shaped differently than its schema allowed, an input given as
//! text) is a fatal verdict that says so, never a panic.

use std::cmp::Ordering;

use crate::check::ir::{Operand, PredOp, Term};

use super::eval::{operand, Env};
use super::value::{text_of, Value, Verdict};

/// `lhs op rhs`.
pub fn compare(op: PredOp, lhs: &Term, rhs: &Term, text: &str, env: &Env<'_>) -> Verdict {
    let (l, r) = match (side(lhs, env), side(rhs, env)) {
        (Ok(l), Ok(r)) => (l, r),
        (Err(e), _) | (_, Err(e)) => return Verdict::fatal(format!("`{text}`: {e}")),
    };
    let Some(order) = order(&l, &r) else {
        return Verdict::fatal(format!(
            "`{text}`: {} and {} cannot be compared",
            show(&l),
            show(&r)
        ));
    };
    let holds = match op {
        PredOp::Eq => order == Ordering::Equal,
        PredOp::Ne => order != Ordering::Equal,
        PredOp::Lt => order == Ordering::Less,
        PredOp::Le => order != Ordering::Greater,
        PredOp::Gt => order == Ordering::Greater,
        PredOp::Ge => order != Ordering::Less,
    };
    if holds {
        Verdict::Pass
    } else {
        Verdict::fail(format!(
            "`{text}` is false ({} {} {})",
            show(&l),
            op.as_str(),
            show(&r)
        ))
    }
}

/// A Bool value as a predicate.
pub fn value(op: &Operand, text: &str, env: &Env<'_>) -> Verdict {
    match operand(op, env) {
        Ok(Value::Bool(true)) => Verdict::Pass,
        Ok(Value::Bool(false)) => Verdict::fail(format!("`{text}` is false")),
        Ok(other) => Verdict::fatal(format!("`{text}` is not a Bool: {}", show(&other))),
        Err(e) => Verdict::fatal(format!("`{text}`: {e}")),
    }
}

/// A side's value: the operand's, or its length.
fn side(term: &Term, env: &Env<'_>) -> Result<Value, String> {
    let v = operand(&term.operand, env)?;
    if !term.len {
        return Ok(v);
    }
    let n = match &v {
        Value::Array(items) => items.len(),
        Value::Object(entries) => entries.len(),
        Value::String(s) => s.chars().count(),
        other => return Err(format!("{} has no length", show(other))),
    };
    Ok(Value::from(n as u64))
}

/// How two values of a type compare: numbers by value (whole numbers
/// exactly), texts and Bools by equality or order.
fn order(l: &Value, r: &Value) -> Option<Ordering> {
    match (l, r) {
        (Value::Number(a), Value::Number(b)) => match (a.as_u64(), b.as_u64()) {
            (Some(a), Some(b)) => Some(a.cmp(&b)),
            _ => a.as_f64()?.partial_cmp(&b.as_f64()?),
        },
        (Value::String(a), Value::String(b)) => Some(a.cmp(b)),
        (Value::Bool(a), Value::Bool(b)) => Some(a.cmp(b)),
        _ => None,
    }
}

/// A value for a message, cut short.
fn show(v: &Value) -> String {
    let text = match v {
        Value::String(s) => format!("{s:?}"),
        other => text_of(other).into_owned(),
    };
    match text.char_indices().nth(80) {
        Some((i, _)) => format!("{}…", &text[..i]),
        None => text,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::check::ir::Value as Const;
    use serde_json::json;

    fn konst(v: Const) -> Term {
        Term {
            operand: Operand::Const { value: v },
            len: false,
        }
    }

    fn param(index: u32, fields: &[&str], len: bool) -> Term {
        Term {
            operand: Operand::Param {
                index,
                fields: fields.iter().map(|f| f.to_string()).collect(),
            },
            len,
        }
    }

    #[test]
    fn comparisons_over_json_fields_and_lengths() {
        let params = [json!({"score": 0.85, "items": [1, 2], "sev": "High", "ok": false})];
        let env = Env::new(&params, &[]);
        let score = param(0, &["score"], false);
        assert!(compare(PredOp::Ge, &score, &konst(Const::Float(0.8)), "t", &env).passed());
        assert!(!compare(PredOp::Lt, &score, &konst(Const::Float(0.8)), "t", &env).passed());
        let items = param(0, &["items"], true);
        assert!(compare(PredOp::Eq, &items, &konst(Const::Int(2)), "t", &env).passed());
        assert!(compare(PredOp::Ne, &items, &konst(Const::Int(0)), "t", &env).passed());
        let sev = param(0, &["sev"], false);
        assert!(compare(
            PredOp::Eq,
            &sev,
            &konst(Const::Text("High".into())),
            "t",
            &env
        )
        .passed());
        let v = compare(
            PredOp::Eq,
            &sev,
            &konst(Const::Text("Low".into())),
            "sev == Low",
            &env,
        );
        assert_eq!(
            v,
            Verdict::fail("`sev == Low` is false (\"High\" == \"Low\")")
        );
        let ok = Operand::Param {
            index: 0,
            fields: vec!["ok".into()],
        };
        assert_eq!(value(&ok, "v.ok", &env), Verdict::fail("`v.ok` is false"));
        // whole numbers compare exactly, beyond what a float holds
        let big = [json!(9_007_199_254_740_993u64)];
        let env = Env::new(&big, &[]);
        let p = param(0, &[], false);
        assert!(!compare(
            PredOp::Eq,
            &p,
            &konst(Const::Int(9_007_199_254_740_992)),
            "t",
            &env
        )
        .passed());
    }

    #[test]
    fn a_value_of_another_shape_is_fatal_not_a_panic() {
        let params = [json!({"score": "high", "n": 3})];
        let env = Env::new(&params, &[]);
        let v = compare(
            PredOp::Gt,
            &param(0, &["score"], false),
            &konst(Const::Int(1)),
            "t",
            &env,
        );
        assert!(matches!(v, Verdict::Fatal(_)), "{v:?}");
        let v = compare(
            PredOp::Gt,
            &param(0, &["n"], true),
            &konst(Const::Int(1)),
            "t",
            &env,
        );
        assert!(matches!(v, Verdict::Fatal(_)), "{v:?}");
        let v = compare(
            PredOp::Gt,
            &param(0, &["missing"], false),
            &konst(Const::Int(1)),
            "t",
            &env,
        );
        assert!(matches!(v, Verdict::Fatal(_)), "{v:?}");
        let v = value(
            &Operand::Param {
                index: 0,
                fields: vec!["n".into()],
            },
            "n",
            &env,
        );
        assert!(matches!(v, Verdict::Fatal(_)), "{v:?}");
    }
}
