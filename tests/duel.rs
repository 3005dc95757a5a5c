//! End-to-end tests of `agentopt duel` and `duel report`: the real binary against a scripted server
//! that answers as two models (the config list names both), each reply decided by the side (the
//! request's model) and how far its conversation has gone.

mod support;

use std::path::{Path, PathBuf};
use std::process::Output;
use std::time::Duration;

use serde_json::{Value, json};
use support::{Reply, Server, text};

/// A config list with two models on the scripted server: `vendor-m` and `buyer-m`.
fn two_models(dir: &Path, server: &Server) -> PathBuf {
    let entry = |name: &str| {
        json!({"model": name, "api_key": support::SECRET, "api_type": "openai",
               "base_url": format!("{}/v1", server.mock.uri()), "price": [0.001, 0.002]})
    };
    let path = dir.join("two.json");
    std::fs::write(&path, json!([entry("vendor-m"), entry("buyer-m")]).to_string()).unwrap();
    path
}

fn reply(thoughts: &str, message: &str, offer: Option<f64>, accepted: bool) -> Reply {
    text(
        json!({"private thoughts": thoughts, "message": message, "offer": offer, "offer accepted": accepted})
            .to_string(),
    )
}

fn is_vendor(body: &Value) -> bool {
    body["model"] == "vendor-m"
}

/// How many replies this side has given in its conversation so far.
fn replies_so_far(body: &Value) -> usize {
    support::messages(body).iter().filter(|m| m["role"] == "assistant").count()
}

async fn duel(dir: &Path, config: &Path, args: &[&str]) -> Output {
    let mut cmd = assert_cmd::Command::cargo_bin("agentopt").unwrap();
    cmd.current_dir(dir)
        .env_remove("OAI_CONFIG_LIST")
        .env_remove("OPENAI_API_KEY")
        .timeout(Duration::from_secs(120))
        .args(["duel", "--vendor-model", "vendor-m", "--buyer-model", "buyer-m", "--config"])
        .arg(config)
        .args(args);
    support::output_off_runtime(cmd).await
}

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn read(path: &Path) -> Value {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str(&text).unwrap()
}

/// The vendor asks 300 then 250 (thinking VENDOR-SECRET); the buyer bids 200 (thinking BUYER-SECRET),
/// then accepts.
async fn haggling_server(dir: &Path, delay: Duration) -> Server {
    Server::start(dir, delay, |body| match (is_vendor(body), replies_so_far(body)) {
        (true, 0) => reply("VENDOR-SECRET start high", "A fine oak table: 300.", Some(300.0), false),
        (true, _) => reply("VENDOR-SECRET meet halfway", "250, final.", Some(250.0), false),
        (false, 0) => reply("BUYER-SECRET lowball", "I can do 200.", Some(200.0), false),
        (false, _) => reply("BUYER-SECRET good enough", "Deal.", None, true),
    })
    .await
}

#[tokio::test(flavor = "multi_thread")]
async fn thoughts_stay_private_acceptance_sets_the_price_and_rounds_run_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let server = haggling_server(dir.path(), Duration::from_millis(500)).await;
    let config = two_models(dir.path(), &server);
    let out = duel(
        dir.path(),
        &config,
        &["--rounds", "3", "--concurrency", "3", "--no-cache", "--json", "--save", "d"],
    )
    .await;
    let summary = support::json_summary(&out);
    assert_eq!(
        (
            &summary["rounds"],
            &summary["agreed"],
            &summary["errored"],
            &summary["mean_price"],
            &summary["median_price"]
        ),
        (&json!(3), &json!(3), &json!(0), &json!(250.0), &json!(250.0))
    );
    assert_eq!(summary["prices"], json!([250.0, 250.0, 250.0]));
    assert_eq!(stdout(&out).lines().count(), 1, "--json prints the summary alone");

    let bodies = server.bodies().await;
    assert_eq!(bodies.len(), 12, "4 replies per round");
    for body in &bodies {
        let sent = body["messages"].to_string();
        let (own, others) = if is_vendor(body) { ("VENDOR", "BUYER") } else { ("BUYER", "VENDOR") };
        assert!(!sent.contains(&format!("{others}-SECRET")), "the other side's thoughts leaked: {sent}");
        // A side's own earlier thoughts stay in its own history.
        if replies_so_far(body) > 0 {
            assert!(sent.contains(&format!("{own}-SECRET")), "{sent}");
        }
        assert_eq!(body["response_format"], json!({"type": "json_object"}));
    }
    // The notebook's opening reaches the vendor only; the buyer's first message is the vendor's reply.
    let first_buyer = bodies.iter().find(|b| !is_vendor(b)).unwrap();
    assert_eq!(support::messages(first_buyer)[1]["role"], "user");
    assert!(support::messages(first_buyer)[1]["content"].as_str().unwrap().contains("A fine oak table"));
    // The three rounds started together, each with its own seed.
    let mut opening_seeds: Vec<u64> = bodies[..3].iter().map(|b| b["seed"].as_u64().unwrap()).collect();
    opening_seeds.sort();
    assert_eq!(opening_seeds, [0, 1, 2]);
    assert!(bodies[..3].iter().all(is_vendor));

    let round = read(&dir.path().join("d/rounds/0002.json"));
    assert_eq!(
        round["outcome"],
        json!({"kind": "agreed", "price": 250.0, "accepted_by": "buyer", "turns": 4})
    );
    assert_eq!(round["seed"], 1);
    assert_eq!(round["turns"].as_array().unwrap().len(), 4);
    assert_eq!(round["turns"][0]["reply"]["thoughts"], "VENDOR-SECRET start high");
    assert_eq!(
        (round["usage"]["vendor"]["calls"].as_u64(), round["usage"]["buyer"]["calls"].as_u64()),
        (Some(2), Some(2))
    );
    assert!(round["histories"]["buyer"].to_string().contains("BUYER-SECRET"));
    assert!(!round["histories"]["buyer"].to_string().contains("VENDOR-SECRET"));
    let info = read(&dir.path().join("d/duel.json"));
    assert_eq!(
        (info["models"]["vendor"].as_str(), info["summary"]["agreed"].as_u64()),
        (Some("vendor-m"), Some(3))
    );
    assert!(!std::fs::read_to_string(dir.path().join("d/duel.json")).unwrap().contains(support::SECRET));
}

#[tokio::test(flavor = "multi_thread")]
async fn no_deal_after_max_turns_and_unusable_replies_error_the_round_apart() {
    let dir = tempfile::tempdir().unwrap();
    // Nobody gives in; the buyer of the round with seed 1 never writes JSON.
    let server = Server::start(dir.path(), Duration::ZERO, |body| {
        if is_vendor(body) {
            return reply("hold", "No less than 400.", Some(400.0), false);
        }
        if body["seed"] == 1 {
            return text("Let me think... maybe 100?");
        }
        reply("hold", "No more than 100.", Some(100.0), false)
    })
    .await;
    let config = two_models(dir.path(), &server);
    let out =
        duel(dir.path(), &config, &["--rounds", "2", "--max-turns", "2", "--no-cache", "--save", "d"]).await;
    assert!(out.status.success(), "{out:?}");
    let shown = stdout(&out);
    assert!(shown.contains("rounds:  2 (0 agreed, 1 no deal, 1 errored)"), "{shown}");
    assert!(shown.contains("round 2 errored (Buyer): unusable reply twice"), "{shown}");
    assert!(shown.contains("── no deal after 4 replies ──"), "{shown}");
    // The transcript shows the thoughts under the message they led to.
    assert!(
        shown.contains("(Vendor thinks: hold)") && shown.contains("Vendor: No less than 400.  [offer 400]"),
        "{shown}"
    );
    let no_deal = read(&dir.path().join("d/rounds/0001.json"));
    assert_eq!(no_deal["outcome"], json!({"kind": "no_deal", "turns": 4}));
    assert_eq!(no_deal["standing"], json!({"vendor": 400.0, "buyer": 100.0}));
    let errored = read(&dir.path().join("d/rounds/0002.json"));
    assert_eq!(errored["outcome"]["kind"], "errored");
    assert_eq!(errored["outcome"]["rejected"].as_array().unwrap().len(), 2);
    // The retry told the model what was wrong.
    let bodies = server.bodies().await;
    let retry = bodies.iter().filter(|b| !is_vendor(b) && b["seed"] == 1).nth(1).unwrap();
    let last = support::last(retry)["content"].as_str().unwrap().to_string();
    assert!(last.contains("could not be used: the reply holds no JSON object"), "{last}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_scenario_file_sets_sides_opening_and_stop_and_bad_ones_are_named() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), Duration::ZERO, |body| {
        assert!(!is_vendor(body), "the buyer answers the vendor's opening and the offers cross at once");
        reply("fine", "I'll pay 500.", Some(500.0), false)
    })
    .await;
    let config = two_models(dir.path(), &server);
    let scenario = dir.path().join("bike.toml");
    std::fs::write(
        &scenario,
        "name = \"bike\"\nopens = \"vendor\"\nopening = \"Bike for sale, 450.\"\nopening_offer = 450\n\
         stop = \"offers-cross\"\n\n[vendor]\nname = \"Seller\"\nsystem = \"You sell a bike.\"\n\n\
         [buyer]\nname = \"Rider\"\nsystem = \"You want a bike.\"\n",
    )
    .unwrap();
    let out = duel(dir.path(), &config, &["--scenario", "bike.toml", "--no-cache", "--json"]).await;
    let summary = support::json_summary(&out);
    assert_eq!((&summary["agreed"], &summary["prices"]), (&json!(1), &json!([450.0])));
    let bodies = server.bodies().await;
    let system = bodies[0]["messages"][0]["content"].as_str().unwrap();
    assert!(system.starts_with("You want a bike.") && system.contains("\"private thoughts\""), "{system}");
    assert!(bodies[0]["messages"][1]["content"].as_str().unwrap().contains("Bike for sale, 450."));

    std::fs::write(&scenario, "name = \"bike\"\n[vendor]\nname = \"S\"\nsystem = \"x\"\nmood = \"grumpy\"\n")
        .unwrap();
    let out = duel(dir.path(), &config, &["--scenario", "bike.toml", "--no-cache"]).await;
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("bike.toml:5:") && stderr.contains("unknown field `mood`"), "{stderr}");
    let out = duel(dir.path(), &config, &["--rounds", "0"]).await;
    assert_eq!(out.status.code(), Some(2), "{out:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn the_cache_replays_a_duel_without_making_rounds_alike_and_report_compares_pairings() {
    let dir = tempfile::tempdir().unwrap();
    let server = haggling_server(dir.path(), Duration::ZERO).await;
    let config = two_models(dir.path(), &server);
    let first = duel(dir.path(), &config, &["--rounds", "2", "--json", "--save", "a"]).await;
    support::json_summary(&first);
    assert_eq!(server.bodies().await.len(), 8);
    let again = duel(dir.path(), &config, &["--rounds", "2", "--json", "--save", "b"]).await;
    assert_eq!(support::json_summary(&again)["agreed"], 2);
    assert_eq!(server.bodies().await.len(), 8, "the same seeds replay from the cache");
    // The models swapped: another pairing.
    let mut cmd = assert_cmd::Command::cargo_bin("agentopt").unwrap();
    cmd.current_dir(dir.path())
        .env_remove("OAI_CONFIG_LIST")
        .args([
            "duel",
            "--vendor-model",
            "buyer-m",
            "--buyer-model",
            "vendor-m",
            "--rounds",
            "1",
            "--json",
            "--save",
            "c",
        ])
        .args(["--no-cache", "--config"])
        .arg(&config);
    // Each side now answers as the other model would: the "vendor" bids and the "buyer" asks.
    let swapped = support::output_off_runtime(cmd).await;
    assert!(swapped.status.success(), "{swapped:?}");

    let mut cmd = assert_cmd::Command::cargo_bin("agentopt").unwrap();
    cmd.current_dir(dir.path()).args(["duel", "report", "a", "b", "c", "--out", "r.html"]);
    let out = support::output_off_runtime(cmd).await;
    assert!(out.status.success(), "{out:?}");
    let shown = stdout(&out);
    // `b` replayed `a`'s seeds from the cache: no new samples, so they are left out, not counted twice.
    let same = "table sale, 4 turns: vendor-m (vendor) vs buyer-m (buyer)\n  rounds 2  agreed 2";
    assert!(shown.contains(same) && shown.contains("left out: 2 round(s) whose seeds"), "{shown}");
    assert!(
        shown.contains("table sale, 4 turns: buyer-m (vendor) vs vendor-m (buyer)\n  rounds 1"),
        "{shown}"
    );
    let html = std::fs::read_to_string(dir.path().join("r.html")).unwrap();
    assert!(html.contains("<svg") && html.matches("<circle").count() == 3, "{html}");

    // Another turn limit is another pairing, and a save directory that holds a duel is not reused.
    support::json_summary(&duel(dir.path(), &config, &["--max-turns", "3", "--json", "--save", "e"]).await);
    let refused = duel(dir.path(), &config, &["--json", "--save", "e"]).await;
    assert_eq!(refused.status.code(), Some(2), "{refused:?}");
    assert!(String::from_utf8_lossy(&refused.stderr).contains("already holds a duel"));
    let mut cmd = assert_cmd::Command::cargo_bin("agentopt").unwrap();
    cmd.current_dir(dir.path()).args(["duel", "report", "a", "e", "--json"]);
    let out = support::output_off_runtime(cmd).await;
    let report: Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{e}: {out:?}"));
    let turns: Vec<u64> =
        report.as_array().unwrap().iter().map(|p| p["max_turns"].as_u64().unwrap()).collect();
    assert_eq!(turns, [4, 3]);

    let mut cmd = assert_cmd::Command::cargo_bin("agentopt").unwrap();
    cmd.current_dir(dir.path()).args(["duel", "report", "nowhere"]);
    let out = support::output_off_runtime(cmd).await;
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    assert!(String::from_utf8_lossy(&out.stderr).contains("`nowhere` is not a duel save"));
}

/// A refused key fails every call alike: the duel stops starting rounds and says why (exit 1).
#[tokio::test(flavor = "multi_thread")]
async fn an_error_every_call_would_meet_stops_the_duel() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), Duration::ZERO, |_| Reply::Status(401, "no".into())).await;
    let config = two_models(dir.path(), &server);
    let out =
        duel(dir.path(), &config, &["--rounds", "5", "--concurrency", "1", "--no-cache", "--save", "d"])
            .await;
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("authentication failed") && stderr.contains("stopped after 1 of 5 rounds"),
        "{stderr}"
    );
    assert_eq!(server.bodies().await.len(), 1);
    assert!(dir.path().join("d/rounds/0001.json").exists());
}
