/* The guide's roll-up of each open safety check for their tour (`GET /api/safety-checks/{id}` with the guide's
 * token): safe / need help / unanswered / unknown, the names of those who need help or have not answered, and for
 * each unanswered traveller two buttons to answer for them (`safety_reply` with `for`, through the outbox).
 * Polled while the check is open, and again after each answer for someone is acknowledged. */
import { el, keepUnchanged, newId } from "./dom.js";
import { t } from "./i18n.js";

const POLL_MS = 10000;
const COUNTS = ["safe", "need_help", "unanswered", "unknown"];

export class RollUp {
  constructor({ link, checks, auth, tourId }) {
    Object.assign(this, { link, checks, auth, tourId }); // auth(): the guide's token now (it is refreshed)
    this.data = {};     // check_id -> the roll-up last read
    this.pending = {};  // check_id -> sub -> status answered for, not yet seen in a roll-up
    this.node = null;
    checks.listeners.push(() => this.refresh());
  }

  view(tourId) {
    this.tourId = tourId;
    this.drawn = null;
    this.node = el("div", { cls: "rollups" });
    this.render();
    clearInterval(this.poller);
    this.poller = setInterval(() => this.refresh(), POLL_MS);
    this.refresh();
    return this.node;
  }

  watched() {
    const now = Date.now();
    return this.checks.checks.filter((c) => c.tours.includes(this.tourId) && Date.parse(c.deadline) + 3600000 > now);
  }

  async refresh() {
    if (!navigator.onLine) return;
    for (const check of this.watched()) {
      try {
        const resp = await fetch(`/api/safety-checks/${encodeURIComponent(check.check_id)}`,
                                 { headers: { Authorization: `Bearer ${this.auth()}` } });
        if (!resp.ok) continue;
        this.data[check.check_id] = await resp.json();
      } catch (e) { /* offline: keep the last one read */ }
    }
    this.render();
  }

  answerFor(check, person, status) {
    (this.pending[check.check_id] = this.pending[check.check_id] || {})[person.sub] = status;
    this.link.send({ type: "safety_reply", id: newId("sc"), check_id: check.check_id, status, for: person.sub,
                     at: new Date().toISOString() });
    this.render();
  }

  acked(entry) {
    if (entry.msg.type === "safety_reply" && entry.msg.for) setTimeout(() => this.refresh(), 300);
  }

  failed(entry) {
    if (entry.msg.type !== "safety_reply" || !entry.msg.for) return;
    delete (this.pending[entry.msg.check_id] || {})[entry.msg.for];
    this.render();
  }

  render() {
    if (!this.node) return;
    // redraw only on a change: a poll that changes nothing must not move a finger's target or the focus
    const signature = JSON.stringify([this.watched().map((c) => c.check_id), this.data, this.pending, navigator.onLine]);
    if (signature === this.drawn && this.node.isConnected) return;
    this.drawn = signature;
    const fresh = [];
    for (const check of this.watched()) {
      const all = this.data[check.check_id];
      const mine = all && all.tours && all.tours[this.tourId];
      const head = `rollup-h-${check.check_id}`;
      const card = el("section", { cls: "card rollup", "data-rollup": check.check_id, "aria-labelledby": head }, [
        el("h2", { id: head, text: t("rollup.title", { tour: this.tourId }) }),
        el("p", { cls: "check-message", text: check.message })]);
      if (!mine) {
        card.append(el("p", { cls: "muted", text: t(navigator.onLine ? "rollup.loading" : "rollup.offline") }));
      } else {
        card.append(el("dl", { cls: "stats four" }, COUNTS.map((name) => el("div", { "data-count": name }, [
          el("dt", { text: t(`rollup.${name}`) }), el("dd", { text: String(mine[name]) })]))));
        card.append(...this.people(check, mine.people || []));
      }
      fresh.push(card);
    }
    // a poll or an ack redraws while the guide answers for one person after another: the people and counts that
    // did not change stay the same nodes, so the next tap is not lost to a redraw
    const sameList = (old, node) => old.matches("ul.answer-for") && node.matches("ul.answer-for") &&
      !!keepUnchanged(old, [...node.children]);
    const sameCheck = (old, node) => !!old.dataset.rollup && old.dataset.rollup === node.dataset.rollup &&
      !!keepUnchanged(old, [...node.children], sameList);
    keepUnchanged(this.node, fresh, sameCheck);
  }

  people(check, people) {
    const label = (p) => p.name || p.sub;
    const pending = this.pending[check.check_id] || {};
    const help = people.filter((p) => p.status === "need_help");
    const waiting = people.filter((p) => p.status === "unanswered" && p.role === "traveller");
    const out = [];
    if (help.length) {
      out.push(el("h3", { text: t("rollup.helpnames") }), el("ul", { cls: "plain help-list" }, help.map((p) =>
        el("li", {}, [el("b", { text: label(p) }), p.note ? el("span", { text: ` — ${p.note}` }) : null]))));
    }
    out.push(el("h3", { text: t("rollup.waiting") }));
    if (!waiting.length) { out.push(el("p", { cls: "muted", text: t("guide.none") })); return out; }
    out.push(el("ul", { cls: "plain answer-for" }, waiting.map((p) => {
      const sent = pending[p.sub];
      return el("li", { "data-sub": p.sub }, [
        el("b", { text: label(p) }),
        sent ? el("p", { cls: "status", text: t("rollup.sent", { status: t(`rollup.${sent}`) }) })
             : el("div", { cls: "row" }, [
          el("button", { type: "button", cls: "btn safe", "data-tp": "answer-for-safe", "data-sub": p.sub,
                         "aria-label": t("rollup.forsafe", { name: label(p) }), text: t("rollup.safe"),
                         onclick: () => this.answerFor(check, p, "safe") }),
          el("button", { type: "button", cls: "btn help", "data-tp": "answer-for-help", "data-sub": p.sub,
                         "aria-label": t("rollup.forhelp", { name: label(p) }), text: t("rollup.need_help"),
                         onclick: () => this.answerFor(check, p, "need_help") })])]);
    })));
    return out;
  }
}
