#include "pipeline/expr.hpp"

#include <cmath>
#include <random>

#include <gtest/gtest.h>

namespace lockstep::pipeline {
namespace {

EvalContext context() {
  EvalContext ctx;
  ctx.contexts = Value::parse(R"({
    "github": {"event_name": "push", "ref": "refs/heads/main",
               "event": {"labels": [{"name": "bug"}, {"name": "ci"}, {"id": 3}]}},
    "matrix": {"os": "ubuntu", "version": 14, "flags": ["-O2", "-g"]},
    "env": {"GREETING": "hello", "EMPTY": ""},
    "steps": {"build": {"outputs": {"artifact": "app.tar"}, "outcome": "success"}},
    "needs": {"setup": {"result": "success", "outputs": {"matrix": "{\"x\":[1,2]}"}}}
  })");
  return ctx;
}

Value eval(std::string_view text, const EvalContext& ctx = context()) {
  auto r = evaluate(text, ctx);
  EXPECT_TRUE(r) << text << ": " << r.error().message();
  return r ? *r : Value("<error>");
}

std::string eval_error(std::string_view text, const EvalContext& ctx = context()) {
  auto r = evaluate(text, ctx);
  EXPECT_FALSE(r) << text;
  return r ? std::string() : r.error().message();
}

TEST(ExprLiterals, AllKinds) {
  EXPECT_EQ(eval("null"), Value(nullptr));
  EXPECT_EQ(eval("true"), Value(true));
  EXPECT_EQ(eval("false"), Value(false));
  EXPECT_EQ(eval("711"), Value(711));
  EXPECT_EQ(eval("-9.2"), Value(-9.2));
  EXPECT_EQ(eval("0xff"), Value(255));
  EXPECT_EQ(eval("-2.99e-2"), Value(-0.0299));
  EXPECT_EQ(eval("1e3"), Value(1000));
  EXPECT_EQ(eval(".5"), Value(0.5));
  EXPECT_EQ(eval("'Mona the Octocat'"), Value("Mona the Octocat"));
  EXPECT_EQ(eval("'It''s open source!'"), Value("It's open source!"));
  EXPECT_TRUE(std::isnan(eval("NaN").get<double>()));
  EXPECT_EQ(eval("Infinity"), Value(INFINITY));
  EXPECT_EQ(eval("-Infinity"), Value(-INFINITY));
}

TEST(ExprSyntax, ErrorsArePinned) {
  EXPECT_EQ(eval_error("1 =="), "invalid expression '1 ==': unexpected end of expression");
  EXPECT_EQ(eval_error("(1"), "invalid expression '(1': unexpected end of expression");
  EXPECT_EQ(eval_error("1 == )"), "invalid expression '1 == )': unexpected ')' at position 6");
  EXPECT_EQ(eval_error("a = 1"),
            "invalid expression 'a = 1': unexpected character '=' at position 3");
  EXPECT_EQ(eval_error("a == 1"), "invalid expression 'a == 1': unknown context 'a'");
  EXPECT_EQ(eval_error("matrix.os = 1"),
            "invalid expression 'matrix.os = 1': unexpected character '=' at position 11");
  // Found by fuzzing: the message quoted the first byte of a two-byte
  // character, which is not UTF-8 on its own. Long expressions are cut
  // between characters too.
  std::string euros;
  for (int i = 0; i < 40; ++i) euros += "\xE2\x82\xAC";  // 120 bytes
  EXPECT_EQ(eval_error("'a" + euros + "' ="), "invalid expression ''a" + euros.substr(0, 96) +
                                                  "...': unexpected character '=' at "
                                                  "position 125");
  EXPECT_EQ(eval_error("a \xC6\x96 b"),
            "invalid expression 'a \xC6\x96 b': unexpected character '\xC6\x96' at position 3");
  EXPECT_EQ(
      eval_error("\"x\""),
      "invalid expression '\"x\"': unexpected '\"' at position 1 (strings use single quotes)");
  EXPECT_EQ(eval_error("'abc"),
            "invalid expression ''abc': unterminated string starting at position 1");
  EXPECT_EQ(eval_error("1.2.3"),
            "invalid expression '1.2.3': invalid number '1.2.3' at position 1");
  EXPECT_EQ(eval_error("0xZZ"), "invalid expression '0xZZ': invalid number '0xZZ' at position 1");
  EXPECT_EQ(eval_error("gihub.ref"),
            "invalid expression 'gihub.ref': unknown context 'gihub' (did you mean 'github'?)");
  EXPECT_EQ(eval_error("foo(1)"),
            "invalid expression 'foo(1)': unknown function 'foo' at position 1");
  EXPECT_EQ(eval_error("contains('a')"),
            "invalid expression 'contains('a')': contains() takes 2 arguments, got 1");
  EXPECT_EQ(eval_error("join()"),
            "invalid expression 'join()': join() takes 1 or 2 arguments, got 0");
  EXPECT_EQ(eval_error("format()"),
            "invalid expression 'format()': format() takes at least 1 argument, got 0");
  EXPECT_EQ(eval_error("toJSON(1, 2)"),
            "invalid expression 'toJSON(1, 2)': toJSON() takes 1 argument, got 2");
  EXPECT_EQ(eval_error("success(1)"),
            "invalid expression 'success(1)': success() takes 0 arguments, got 1");
  EXPECT_EQ(eval_error(""), "invalid expression '': empty expression");
  EXPECT_EQ(eval_error("github."), "invalid expression 'github.': unexpected end of expression");
  EXPECT_EQ(eval_error("github.ref github.ref"),
            "invalid expression 'github.ref github.ref': unexpected 'github' at position 12");
  std::string deep(60, '(');
  deep += "1" + std::string(60, ')');
  EXPECT_EQ(eval_error(deep), "invalid expression '" + deep.substr(0, 100) +
                                  "...': expression nests deeper than 50 levels");
  std::string chain = "1";
  for (int i = 0; i < 1000; ++i) chain += " == 1";
  EXPECT_EQ(eval_error(chain), "invalid expression '" + chain.substr(0, 100) +
                                   "...': expression has more than 2000 tokens");
  EXPECT_EQ(eval_error(std::string(60, '!') + "true"),
            "invalid expression '" + std::string(60, '!') +
                "true': expression nests deeper than 50 levels");
}

// Every prefix of a valid expression evaluates or fails with a message; no
// crash and no exception.
TEST(ExprSyntax, EveryPrefixEvaluatesOrFails) {
  const std::string full =
      "!(contains(github.event.labels.*.name, 'bug') || format('{0}', matrix.flags[0]) == "
      "'-O2') && fromJSON('{\"a\": [1, 2]}').a[1] >= 0x1 && startsWith(github.ref, 'refs/')";
  ASSERT_EQ(eval(full), Value(false));
  for (size_t n = 0; n < full.size(); ++n) {
    auto r = evaluate(std::string_view(full).substr(0, n), context());
    if (!r) {
      EXPECT_FALSE(r.error().message().empty());
    }
  }
}

// Fixed-seed random token soup: evaluation returns a value or a message,
// never crashes or throws.
TEST(ExprSyntax, RandomTokenSequences) {
  const std::vector<std::string> tokens = {"(",
                                           ")",
                                           "[",
                                           "]",
                                           ".",
                                           "*",
                                           "!",
                                           "<",
                                           "<=",
                                           "==",
                                           "!=",
                                           "&&",
                                           "||",
                                           ",",
                                           "1",
                                           "0x1f",
                                           "-2.5e3",
                                           "'s'",
                                           "''",
                                           "null",
                                           "true",
                                           "github",
                                           "matrix",
                                           "flags",
                                           "format(",
                                           "contains(",
                                           "fromJSON(",
                                           "join(",
                                           "toJSON(",
                                           "'{0}'",
                                           "'[1,{\"a\":2}]'",
                                           "success()"};
  std::mt19937 rng(777);
  size_t ok = 0;
  for (int round = 0; round < 3000; ++round) {
    std::string e;
    const int n = 1 + static_cast<int>(rng() % 12);
    for (int i = 0; i < n; ++i) e += tokens[rng() % tokens.size()] + " ";
    auto r = evaluate(e, context());
    if (r) {
      ++ok;
    } else {
      EXPECT_EQ(r.error().kind(), ErrorKind::kWorkflow) << e;
      EXPECT_FALSE(r.error().message().empty());
    }
  }
  EXPECT_GT(ok, 0u);
}

TEST(ExprSyntax, CheckSyntaxDoesNotEvaluate) {
  EXPECT_TRUE(check_syntax("hashFiles('**/x') != '' && fromJSON('not json')"));
  EXPECT_TRUE(check_syntax("steps.my-step.outputs.value"));
  EXPECT_TRUE(check_syntax("CONTAINS(Github.Ref, 'main')"));
  EXPECT_FALSE(check_syntax("github.ref =="));
  EXPECT_TRUE(check_template("a ${{ 1 }} b ${{ 'x}}y' }}"));
  auto r = check_template("echo ${{ matrix.os");
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().message(), "'${{' at offset 5 has no closing '}}'");
  EXPECT_EQ(check_template("${{ 1 + 1 }}").error().message(),
            "invalid expression '1 + 1': unexpected character '+' at position 3");
}

TEST(ExprOperators, Precedence) {
  // ! binds tighter than comparison, comparison tighter than ==, == than &&, && than ||.
  EXPECT_EQ(eval("!false == true"), Value(true));
  EXPECT_EQ(eval("1 < 2 == true"), Value(true));
  EXPECT_EQ(eval("true || false && false"), Value(true));
  EXPECT_EQ(eval("(true || false) && false"), Value(false));
  EXPECT_EQ(eval("false && false || true"), Value(true));
  EXPECT_EQ(eval("1 == 1 && 2 == 2"), Value(true));
  EXPECT_EQ(eval("!(1 == 2)"), Value(true));
  EXPECT_EQ(eval("!1 == 2"), Value(false));    // (!1) == 2 -> false == 2 -> 0 == 2
  EXPECT_EQ(eval("3 > 2 > 1"), Value(false));  // (3 > 2) > 1 -> true > 1 -> 1 > 1
  EXPECT_EQ(eval("matrix.flags[0] == '-O2'"), Value(true));
  EXPECT_EQ(eval("1 <= 1 && 2 >= 3 || 4 != 4"), Value(false));
}

TEST(ExprOperators, AndOrReturnOperands) {
  EXPECT_EQ(eval("'' || 'fallback'"), Value("fallback"));
  EXPECT_EQ(eval("env.GREETING || 'fallback'"), Value("hello"));
  EXPECT_EQ(eval("env.GREETING && 'second'"), Value("second"));
  EXPECT_EQ(eval("0 && 'never'"), Value(0));
  EXPECT_EQ(eval("null || 0"), Value(0));
  EXPECT_EQ(eval("matrix.os == 'ubuntu' && 'linux' || 'other'"), Value("linux"));
}

TEST(ExprCoercion, GitHubDocsTable) {
  // null -> 0
  EXPECT_EQ(eval("null == 0"), Value(true));
  EXPECT_EQ(eval("null == false"), Value(true));
  EXPECT_EQ(eval("null == ''"), Value(true));
  EXPECT_EQ(eval("null == null"), Value(true));
  // booleans -> 1 / 0
  EXPECT_EQ(eval("true == 1"), Value(true));
  EXPECT_EQ(eval("false == 0"), Value(true));
  EXPECT_EQ(eval("true == 2"), Value(false));
  EXPECT_EQ(eval("true == '1'"), Value(true));
  EXPECT_EQ(eval("false == ''"), Value(true));
  // strings -> any legal JSON number, '' -> 0, otherwise NaN
  EXPECT_EQ(eval("'1' == 1"), Value(true));
  EXPECT_EQ(eval("'1.50' == 1.5"), Value(true));
  EXPECT_EQ(eval("'0x10' == 16"), Value(true));
  EXPECT_EQ(eval("' 2 ' == 2"), Value(true));
  EXPECT_EQ(eval("' +123456.789 ' == 123456.789"), Value(true));
  EXPECT_EQ(eval("' 0xFF ' == 255"), Value(true));
  EXPECT_EQ(eval("' 0o10 ' == 8"), Value(true));
  EXPECT_EQ(eval("0o10 == 8"), Value(true));
  EXPECT_EQ(eval("' -Infinity ' == -Infinity"), Value(true));
  EXPECT_EQ(eval("' NaN ' != NaN"), Value(true));
  EXPECT_EQ(eval("'1e3' == 1000"), Value(true));
  EXPECT_EQ(eval("'' == 0"), Value(true));
  EXPECT_EQ(eval("'abc' == 0"), Value(false));
  EXPECT_EQ(eval("'abc' != 0"), Value(true));
  // arrays and objects -> NaN; equal only to the same instance
  EXPECT_EQ(eval("matrix.flags == matrix.flags"), Value(true));
  EXPECT_EQ(eval("github.event == github.event"), Value(true));
  EXPECT_EQ(eval("fromJSON('[]') == fromJSON('[]')"), Value(false));
  EXPECT_EQ(eval("fromJSON('{}') == 0"), Value(false));
  EXPECT_EQ(eval("matrix.flags == 'Array'"), Value(false));
  // NaN equals nothing, not even NaN
  EXPECT_EQ(eval("NaN == NaN"), Value(false));
  EXPECT_EQ(eval("NaN != NaN"), Value(true));
  EXPECT_EQ(eval("'abc' == 'abc'"), Value(true));
  // strings compare ignoring case
  EXPECT_EQ(eval("'ABC' == 'abc'"), Value(true));
  EXPECT_EQ(eval("github.event_name == 'PUSH'"), Value(true));
  EXPECT_EQ(eval("'a' < 'B'"), Value(true));
  EXPECT_EQ(eval("'b' > 'A'"), Value(true));
  EXPECT_EQ(eval("'10' < '9'"), Value(true));  // both strings: text order
  EXPECT_EQ(eval("'10' < 9"), Value(false));   // mixed: numbers
  EXPECT_EQ(eval("null < 1"), Value(true));
  EXPECT_EQ(eval("'abc' < 1"), Value(false));
  EXPECT_EQ(eval("'abc' >= 1"), Value(false));
  EXPECT_EQ(eval("true > false"), Value(true));
  EXPECT_EQ(eval("0x10 >= 16"), Value(true));
}

TEST(ExprCoercion, Truthiness) {
  for (const char* falsy : {"''", "0", "-0", "null", "false", "NaN", "env.EMPTY", "env.MISSING"}) {
    EXPECT_EQ(eval(std::string("!") + falsy), Value(true)) << falsy;
  }
  for (const char* truthy :
       {"'0'", "1", "-1", "'false'", "true", "matrix.flags", "fromJSON('{}')", "fromJSON('[]')"}) {
    EXPECT_EQ(eval(std::string("!") + truthy), Value(false)) << truthy;
  }
}

TEST(ExprAccess, PropertiesIndexesAndFilters) {
  EXPECT_EQ(eval("github.ref"), Value("refs/heads/main"));
  EXPECT_EQ(eval("github['ref']"), Value("refs/heads/main"));
  EXPECT_EQ(eval("GITHUB.REF"), Value("refs/heads/main"));  // case-insensitive names
  EXPECT_EQ(eval("steps.build.outputs.artifact"), Value("app.tar"));
  EXPECT_EQ(eval("matrix.flags[1]"), Value("-g"));
  EXPECT_EQ(eval("matrix.flags['1']"), Value("-g"));
  EXPECT_EQ(eval("matrix.flags[2]"), Value(nullptr));
  EXPECT_EQ(eval("matrix.flags[-1]"), Value(nullptr));
  EXPECT_EQ(eval("matrix.flags[0.5]"), Value(nullptr));
  EXPECT_EQ(eval("matrix.os.length"), Value(nullptr));
  EXPECT_EQ(eval("github.missing.deeper"), Value(nullptr));
  EXPECT_EQ(eval("inputs.anything"), Value(nullptr));
  EXPECT_EQ(eval("github.event.labels.*.name"), Value::parse(R"(["bug","ci"])"));
  EXPECT_EQ(eval("github.event.labels[*].name"), Value::parse(R"(["bug","ci"])"));
  EXPECT_EQ(eval("github.event.labels.*.id"), Value::parse("[3]"));
  EXPECT_EQ(eval("matrix.*"), Value::parse(R"([["-O2","-g"],"ubuntu",14])"));
  EXPECT_EQ(eval("fromJSON('{\"a\":{\"x\":1},\"b\":{\"x\":2}}').*.x"), Value::parse("[1,2]"));
  EXPECT_EQ(eval("fromJSON('[[1,2],[3]]').*.*"), Value::parse("[1,2,3]"));
  EXPECT_EQ(eval("contains(github.event.labels.*.name, 'BUG')"), Value(true));
  EXPECT_EQ(eval("fromJSON(needs.setup.outputs.matrix).x[1]"), Value(2));
  EXPECT_EQ(eval("'abc'.length"), Value(nullptr));
}

// The object filter examples of GitHub's expressions documentation.
TEST(ExprAccess, DocsObjectFilters) {
  EvalContext ctx;
  ctx.contexts["inputs"] = Value::parse(R"({
    "fruits": [{"name": "apple", "quantity": 1}, {"name": "orange", "quantity": 2},
               {"name": "pear", "quantity": 1}],
    "vegetables": {
      "scallions": {"colors": ["green", "white", "red"], "ediblePortions": ["roots", "stalks"]},
      "beets": {"colors": ["purple", "red", "gold", "white", "pink"],
                "ediblePortions": ["roots", "stems", "leaves"]},
      "artichokes": {"colors": ["green", "purple", "red", "black"],
                     "ediblePortions": ["hearts", "stems", "leaves"]}}})");
  EXPECT_EQ(eval("inputs.fruits.*.name", ctx), Value::parse(R"(["apple", "orange", "pear"])"));
  // Value keeps object members sorted by key, so members come in key order.
  EXPECT_EQ(eval("inputs.vegetables.*.ediblePortions", ctx),
            Value::parse(R"([["hearts", "stems", "leaves"], ["roots", "stems", "leaves"],
                             ["roots", "stalks"]])"));
  EXPECT_EQ(eval("inputs.vegetables.*.ediblePortions.*", ctx),
            Value::parse(R"(["hearts", "stems", "leaves", "roots", "stems", "leaves", "roots",
                             "stalks"])"));
  EXPECT_EQ(eval("contains(inputs.vegetables.*.colors.*, 'PINK')", ctx), Value(true));
  EXPECT_EQ(eval("inputs.fruits.*.quantity[1]", ctx), Value::parse("[]"));
  EXPECT_EQ(eval("inputs.fruits[1].quantity", ctx), Value(2));
}

TEST(ExprFunctions, ContainsStartsEnds) {
  EXPECT_EQ(eval("contains('Hello world', 'llo')"), Value(true));
  EXPECT_EQ(eval("contains('Hello world', 'LLO')"), Value(true));
  EXPECT_EQ(eval("contains('Hello world', 'xyz')"), Value(false));
  EXPECT_EQ(eval("contains(fromJSON('[\"bug\", \"help wanted\"]'), 'Bug')"), Value(true));
  EXPECT_EQ(eval("contains(fromJSON('[1, 2]'), '2')"), Value(true));
  EXPECT_EQ(eval("contains(fromJSON('[1, 2]'), 3)"), Value(false));
  EXPECT_EQ(eval("contains(12345, 34)"), Value(true));
  EXPECT_EQ(eval("contains(matrix.flags, '-g')"), Value(true));
  EXPECT_EQ(eval("contains(fromJSON('[\"push\", \"pull_request\"]'), github.event_name)"),
            Value(true));
  EXPECT_EQ(eval("startsWith('Hello world', 'he')"), Value(true));
  EXPECT_EQ(eval("startsWith('Hello', 'Hello world')"), Value(false));
  EXPECT_EQ(eval("endsWith('Hello world', 'ORLD')"), Value(true));
  EXPECT_EQ(eval("endsWith('Hello world', 'hello')"), Value(false));
  EXPECT_EQ(eval("startsWith(github.ref, 'refs/heads/')"), Value(true));
  EXPECT_EQ(eval("endsWith(null, '')"), Value(true));
}

TEST(ExprFunctions, Format) {
  EXPECT_EQ(eval("format('Hello {0} {1} {2}', 'Mona', 'the', 'Octocat')"),
            Value("Hello Mona the Octocat"));
  EXPECT_EQ(eval("format('{{Hello {0} {1} {2}!}}', 'Mona', 'the', 'Octocat')"),
            Value("{Hello Mona the Octocat!}"));
  EXPECT_EQ(eval("format('{0}{0}-{1}', 'a', 1.5)"), Value("aa-1.5"));
  EXPECT_EQ(eval("format('{0}|{1}|{2}|{3}', null, true, matrix.flags, github)"),
            Value("|true|Array|Object"));
  EXPECT_EQ(eval_error("format('{0} {1}', 'a')"),
            "format(): '{0} {1}' references argument {1} but 1 argument was given");
  EXPECT_EQ(eval_error("format('{0}')"),
            "format(): '{0}' references argument {0} but 0 arguments were given");
  EXPECT_EQ(eval_error("format('{0', 'a')"), "format(): invalid format string '{0'");
  EXPECT_EQ(eval_error("format('a}b')"), "format(): invalid format string 'a}b'");
  EXPECT_EQ(eval_error("format('{x}', 1)"), "format(): invalid format string '{x}'");
}

TEST(ExprFunctions, JoinToJsonFromJson) {
  EXPECT_EQ(eval("join(matrix.flags)"), Value("-O2,-g"));
  EXPECT_EQ(eval("join(matrix.flags, ' ')"), Value("-O2 -g"));
  EXPECT_EQ(eval("join(github.event.labels.*.name, ', ')"), Value("bug, ci"));
  EXPECT_EQ(eval("join('abc')"), Value("abc"));
  EXPECT_EQ(eval("join(fromJSON('[1, true, null, 2.5]'), '-')"), Value("1-true--2.5"));
  EXPECT_EQ(eval("toJSON(matrix.flags)"), Value("[\n  \"-O2\",\n  \"-g\"\n]"));
  EXPECT_EQ(eval("toJSON(1)"), Value("1"));
  EXPECT_EQ(eval("toJSON('a')"), Value("\"a\""));
  EXPECT_EQ(eval("toJSON(null)"), Value("null"));
  EXPECT_EQ(eval("toJSON(fromJSON('{}'))"), Value("{}"));
  EXPECT_EQ(eval("fromJSON('{\"a\": [1, 2]}').a[1]"), Value(2));
  EXPECT_EQ(eval("fromJSON('true')"), Value(true));
  EXPECT_EQ(eval("fromJSON('42') == 42"), Value(true));
  EXPECT_EQ(eval_error("fromJSON('{oops')"), "fromJSON(): '{oops' is not valid JSON");
  EXPECT_EQ(eval_error("fromJSON('')"), "fromJSON(): '' is not valid JSON");
}

TEST(ExprFunctions, HashFiles) {
  EvalContext ctx = context();
  EXPECT_EQ(eval_error("hashFiles('**/go.sum')", ctx), "hashFiles() is not available here");
  std::vector<std::string> seen;
  ctx.hash_files = [&](const std::vector<std::string>& patterns) -> Result<std::string> {
    seen = patterns;
    return std::string("abc123");
  };
  EXPECT_EQ(eval("hashFiles('**/go.sum', '!vendor/**')", ctx), Value("abc123"));
  EXPECT_EQ(seen, (std::vector<std::string>{"**/go.sum", "!vendor/**"}));
  ctx.hash_files = [](const std::vector<std::string>&) -> Result<std::string> {
    return fail("hashFiles('x'): no files matched", ErrorKind::kWorkflow);
  };
  EXPECT_EQ(eval_error("hashFiles('x')", ctx), "hashFiles('x'): no files matched");
}

TEST(ExprFunctions, StatusFunctions) {
  EvalContext ctx = context();
  EXPECT_EQ(eval("success()", ctx), Value(true));
  EXPECT_EQ(eval("failure()", ctx), Value(false));
  EXPECT_EQ(eval("cancelled()", ctx), Value(false));
  EXPECT_EQ(eval("always()", ctx), Value(true));
  ctx.status = JobStatus::kFailure;
  EXPECT_EQ(eval("SUCCESS()", ctx), Value(false));
  EXPECT_EQ(eval("Failure()", ctx), Value(true));
  ctx.status = JobStatus::kCancelled;
  EXPECT_EQ(eval("cancelled()", ctx), Value(true));
  EXPECT_EQ(eval("success() || failure()", ctx), Value(false));
}

TEST(ExprConditions, ImplicitSuccess) {
  EvalContext ctx = context();
  EXPECT_EQ(*evaluate_if("", ctx), true);
  EXPECT_EQ(*evaluate_if("github.event_name == 'push'", ctx), true);
  EXPECT_EQ(*evaluate_if("${{ github.event_name == 'push' }}", ctx), true);
  EXPECT_EQ(*evaluate_if("  ${{ matrix.os == 'windows' }} ", ctx), false);
  EXPECT_EQ(*evaluate_if("env.EMPTY", ctx), false);
  ctx.status = JobStatus::kFailure;
  EXPECT_EQ(*evaluate_if("github.event_name == 'push'", ctx), false);
  EXPECT_EQ(*evaluate_if("", ctx), false);
  EXPECT_EQ(*evaluate_if("failure()", ctx), true);
  EXPECT_EQ(*evaluate_if("${{ failure() && matrix.os == 'ubuntu' }}", ctx), true);
  EXPECT_EQ(*evaluate_if("always()", ctx), true);
  EXPECT_EQ(*evaluate_if("!cancelled()", ctx), true);
  ctx.status = JobStatus::kCancelled;
  EXPECT_EQ(*evaluate_if("!cancelled()", ctx), false);
  EXPECT_EQ(*evaluate_if("always()", ctx), true);
  EXPECT_EQ(evaluate_if("matrix.os ==", ctx).error().message(),
            "invalid expression 'matrix.os ==': unexpected end of expression");
  EXPECT_TRUE(check_condition("${{ success() }}"));
  EXPECT_TRUE(check_condition("github.ref == 'x'"));
  EXPECT_FALSE(check_condition("${{ 'x' == }}"));
}

TEST(ExprInterpolate, ConvertsAsGitHub) {
  EvalContext ctx = context();
  EXPECT_EQ(*interpolate("plain text", ctx), "plain text");
  EXPECT_EQ(*interpolate("os=${{ matrix.os }} v=${{matrix.version}}", ctx), "os=ubuntu v=14");
  EXPECT_EQ(*interpolate("${{ null }}|${{ true }}|${{ 1.50 }}|${{ 1e20 }}|${{ 0.1 }}", ctx),
            "|true|1.5|1E+20|0.1");
  EXPECT_EQ(*interpolate("${{ 'a}}b' }}", ctx), "a}}b");
  EXPECT_EQ(*interpolate("${{ matrix.flags }} ${{ github.event }}", ctx), "Array Object");
  EXPECT_EQ(*interpolate("${{ steps.build.outputs.artifact }}.sha256", ctx), "app.tar.sha256");
  EXPECT_EQ(interpolate("x ${{ matrix.os", ctx).error().message(),
            "'${{' at offset 2 has no closing '}}'");
  EXPECT_EQ(interpolate("${{ 1 == }}", ctx).error().message(),
            "invalid expression '1 ==': unexpected end of expression");
}

TEST(ExprMatrixKeys, CollectsReferences) {
  auto keys =
      matrix_keys_used("${{ matrix.os }}-${{ matrix['compiler'] }} ${{ matrix.os }}", false);
  ASSERT_TRUE(keys);
  EXPECT_EQ(*keys, (std::vector<std::string>{"os", "compiler"}));
  keys = matrix_keys_used("matrix.arch == 'x' && github.ref", true);
  ASSERT_TRUE(keys);
  EXPECT_EQ(*keys, (std::vector<std::string>{"arch"}));
  keys = matrix_keys_used("no expressions", false);
  ASSERT_TRUE(keys);
  EXPECT_TRUE(keys->empty());
}

TEST(ExprContexts, CollectsContextNames) {
  auto used = contexts_used("${{ needs.a.outputs.x }} ${{ Matrix.os && NEEDS.b }}", false);
  ASSERT_TRUE(used);
  EXPECT_EQ(*used, (std::vector<std::string>{"needs", "matrix"}));
  used = contexts_used("success() && github.ref == env.REF", true);
  ASSERT_TRUE(used);
  EXPECT_EQ(*used, (std::vector<std::string>{"github", "env"}));
  EXPECT_FALSE(contexts_used("${{ nope.x }}", false));
}

TEST(ExprConversions, DisplayStringsAndLooseEqual) {
  EXPECT_EQ(to_display_string(Value(3.0)), "3");
  EXPECT_EQ(to_display_string(Value(-0.0)), "0");
  EXPECT_EQ(to_display_string(Value(1.0 / 3)), "0.333333333333333");
  EXPECT_EQ(to_display_string(Value(NAN)), "NaN");
  EXPECT_EQ(to_display_string(Value(1e15)), "1E+15");
  EXPECT_EQ(to_display_string(Value(123456789012345.0)), "123456789012345");
  EXPECT_EQ(to_display_string(Value(0.0001)), "0.0001");
  EXPECT_EQ(to_display_string(Value(0.00001)), "1E-05");
  EXPECT_EQ(to_display_string(Value(-2.5)), "-2.5");
  EXPECT_EQ(to_display_string(Value(INFINITY)), "Infinity");
  EXPECT_TRUE(loose_equal(Value("GCC"), Value("gcc")));
  EXPECT_TRUE(loose_equal(Value(14), Value("14")));
  EXPECT_TRUE(loose_equal(Value::parse("[1]"), Value::parse("[1]")));
  EXPECT_FALSE(loose_equal(Value::parse("[1]"), Value(1)));
}

TEST(ExprFunctions, ToJsonNeverThrowsAndFromJsonRefusesDeepNesting) {
  EvalContext ctx = context();
  ctx.contexts["steps"]["build"]["outputs"]["raw"] = "a\xC1";  // should never happen; no abort
  EXPECT_EQ(eval("toJSON(steps.build.outputs.raw)", ctx), Value("\"a\xEF\xBF\xBD\""));
  std::string deep(600, '[');
  deep += std::string(600, ']');
  EXPECT_EQ(eval_error("fromJSON('" + deep + "')"),
            "fromJSON(): '" + deep.substr(0, 40) + "...' nests deeper than 512 levels");
  std::string ok(500, '[');
  ok += std::string(500, ']');
  EXPECT_TRUE(eval("fromJSON('" + ok + "')").is_array());
}

}  // namespace
}  // namespace lockstep::pipeline
