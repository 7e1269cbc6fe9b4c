//! Firebase Storage's form of rules (spec 15.6): a `service
//! firebase.storage` block, whose `match /b/{bucket}/o/…` paths name files
//! and whose conditions read `request.resource.size`, `resource.metadata`
//! and the like, is rewritten into rules of the files' metadata documents
//! (`match /_files/…`, `request.resource.data.size`), which the evaluator
//! decides. The rewrite works on the compiled tree, so every position the
//! evaluator reports is still one of the rules file as written.

use hidane_rules::{
    Body, Callee, Expr, ExprKind, Ident, Match, PathPart, Ruleset, Segment, SegmentKind, Service,
    Span,
};

use super::RulesError;

/// The service of Firebase Storage's rules.
const STORAGE: &str = "firebase.storage";
/// The service the evaluator decides.
const FIRESTORE: &str = "cloud.firestore";
/// The collection segment between a file path's segments (spec 15.2).
const FILES: &str = "_files";

/// Moves a `firebase.storage` service of `ruleset`, if any, into its
/// `cloud.firestore` service as rules of the metadata documents.
pub(super) fn fold_storage(ruleset: &mut Ruleset) -> Result<(), RulesError> {
    let Some(at) = ruleset.services.iter().position(|s| s.name == STORAGE) else {
        return Ok(());
    };
    let storage = ruleset.services.remove(at);
    let mut matches = Vec::new();
    for m in storage.body.matches {
        matches.push(file_match(m, true)?);
    }
    let documents = Match {
        path: ["databases", "{database}", "documents"]
            .iter()
            .map(|s| segment(s, storage.span))
            .collect(),
        body: Body {
            functions: storage
                .body
                .functions
                .into_iter()
                .map(|mut f| {
                    rewrite(&mut f.result);
                    f.lets.iter_mut().for_each(|l| rewrite(&mut l.value));
                    f
                })
                .collect(),
            matches,
            allows: Vec::new(),
        },
        span: storage.span,
    };
    match ruleset.services.iter_mut().find(|s| s.name == FIRESTORE) {
        Some(firestore) => firestore.body.matches.push(documents),
        None => ruleset.services.push(Service {
            name: FIRESTORE.to_owned(),
            name_span: storage.name_span,
            body: Body {
                matches: vec![documents],
                ..Body::default()
            },
            span: storage.span,
        }),
    }
    Ok(())
}

/// A `match` of the storage service as one of metadata documents: the
/// outermost loses its `/b/{bucket}/o` prefix, every file segment gains a
/// `_files` segment before it, and every condition reads the metadata
/// document's fields.
fn file_match(mut m: Match, outermost: bool) -> Result<Match, RulesError> {
    let mut path = m.path.into_iter();
    if outermost {
        let prefix: Vec<Segment> = path.by_ref().take(3).collect();
        let is_prefix = matches!(
            prefix.iter().map(|s| &s.kind).collect::<Vec<_>>()[..],
            [SegmentKind::Literal(b), SegmentKind::Wildcard(_), SegmentKind::Literal(o)] if b == "b" && o == "o"
        );
        if !is_prefix {
            return Err(refused(
                m.span,
                "a `match` of firebase.storage must start with /b/{bucket}/o",
            ));
        }
    }
    m.path = path
        .flat_map(|s| {
            let files = Segment {
                kind: SegmentKind::Literal(FILES.to_owned()),
                span: s.span,
                name_span: s.name_span,
            };
            [files, s]
        })
        .collect();
    for f in &mut m.body.functions {
        rewrite(&mut f.result);
        f.lets.iter_mut().for_each(|l| rewrite(&mut l.value));
    }
    for allow in &mut m.body.allows {
        if let Some(condition) = &mut allow.condition {
            rewrite(condition);
        }
    }
    let nested = std::mem::take(&mut m.body.matches);
    for inner in nested {
        m.body.matches.push(file_match(inner, false)?);
    }
    Ok(m)
}

/// The metadata document's field for a file property of Firebase's
/// `resource` (spec 15.2): `name` is the full path there, `md5Hash` the
/// MD5; the presentation fields keep their names.
fn field_of(property: &str) -> Option<&'static str> {
    Some(match property {
        "size" => "size",
        "contentType" => "contentType",
        "metadata" => "metadata",
        "name" => "path",
        "md5Hash" => "md5",
        "cacheControl" => "cacheControl",
        "contentDisposition" => "contentDisposition",
        "contentLanguage" => "contentLanguage",
        _ => return None,
    })
}

/// Whether `e` is `resource` or `request.resource`.
fn is_resource(e: &Expr) -> bool {
    match &e.kind {
        ExprKind::Ident(name) => name == "resource",
        ExprKind::Member { object, field } => {
            field.name == "resource" && matches!(&object.kind, ExprKind::Ident(r) if r == "request")
        }
        _ => false,
    }
}

/// Rewrites `resource.size` and `request.resource.size` (and the other
/// properties of [`field_of`]) into `….data.size` everywhere in `e`.
fn rewrite(e: &mut Expr) {
    match &mut e.kind {
        ExprKind::Member { object, field } => {
            if let (true, Some(name)) = (is_resource(object), field_of(&field.name)) {
                let span = field.span;
                let inner = std::mem::replace(object.as_mut(), placeholder(span));
                **object = Expr {
                    span: inner.span,
                    kind: ExprKind::Member {
                        object: Box::new(inner),
                        field: Ident {
                            name: "data".to_owned(),
                            span,
                        },
                    },
                };
                field.name = name.to_owned();
            } else {
                rewrite(object);
            }
        }
        ExprKind::List(items) => items.iter_mut().for_each(rewrite),
        ExprKind::Map(entries) => entries.iter_mut().for_each(|(k, v)| {
            rewrite(k);
            rewrite(v);
        }),
        ExprKind::Path(parts) => parts.iter_mut().for_each(|p| {
            if let PathPart::Expr(e) = p {
                rewrite(e);
            }
        }),
        ExprKind::Index { object, index } => {
            rewrite(object);
            rewrite(index);
        }
        ExprKind::Slice { object, start, end } => {
            rewrite(object);
            rewrite(start);
            rewrite(end);
        }
        ExprKind::Call { callee, args } => {
            if let Callee::Method { receiver, .. } = callee {
                rewrite(receiver);
            }
            args.iter_mut().for_each(rewrite);
        }
        ExprKind::Unary { operand, .. } => rewrite(operand),
        ExprKind::Binary { left, right, .. } => {
            rewrite(left);
            rewrite(right);
        }
        ExprKind::Is { value, .. } => rewrite(value),
        ExprKind::Ternary {
            condition,
            then,
            otherwise,
            ..
        } => {
            rewrite(condition);
            rewrite(then);
            rewrite(otherwise);
        }
        _ => {}
    }
}

/// An expression to swap out of a tree while it is rebuilt.
fn placeholder(span: Span) -> Expr {
    Expr {
        kind: ExprKind::Null,
        span,
    }
}

/// A literal or wildcard (`{name}`) path segment at `span`.
fn segment(text: &str, span: Span) -> Segment {
    let kind = match text.strip_prefix('{').and_then(|t| t.strip_suffix('}')) {
        Some(name) => SegmentKind::Wildcard(name.to_owned()),
        None => SegmentKind::Literal(text.to_owned()),
    };
    Segment {
        kind,
        span,
        name_span: span,
    }
}

/// A rules file refused for `what`, at `span`.
fn refused(span: Span, what: &str) -> RulesError {
    RulesError(format!(
        "Error compiling rules:\nL{}:{} {what}",
        span.line, span.column
    ))
}

#[cfg(test)]
mod tests {
    use super::super::Rules;

    fn refusal(rules: &str) -> String {
        Rules::compile(rules).expect_err("refused").0
    }

    #[test]
    fn a_storage_match_must_start_with_the_bucket() {
        let message = refusal(
            "rules_version = '2';\nservice firebase.storage {\n  match /images/{name} {\n    allow read;\n  }\n}\n",
        );
        assert_eq!(
            message,
            "Error compiling rules:\nL3:3 a `match` of firebase.storage must start with /b/{bucket}/o"
        );
    }

    #[test]
    fn both_services_compile_together() {
        let rules = "rules_version = '2';\n\
            service cloud.firestore { match /databases/{database}/documents { match /a/{x} { allow read; } } }\n\
            service firebase.storage { match /b/{bucket}/o { match /f/{name} { allow read: if resource.size < 10; } } }\n";
        let compiled = Rules::compile(rules).expect("compiles");
        let firestore = compiled
            .ruleset
            .service("cloud.firestore")
            .expect("one service");
        assert!(
            compiled.ruleset.service("firebase.storage").is_none(),
            "folded away"
        );
        assert_eq!(
            firestore.body.matches.len(),
            2,
            "the documents' and the files'"
        );
    }
}
