/* The notices inbox (traveller and guide): pushed notices kept on the phone, newest first, each with a read
 * receipt (`notice_read`) and, on a notice with choices, one button per choice (`notice_reply`; a later choice
 * replaces the earlier); an `answer` to one's complaint stands out, and a traveller's `followup` asks whether they
 * are satisfied now (followup.js). Everything goes through the outbox like every other message. */
import { el, keepUnchanged, load, save, newId } from "./dom.js";
import { t } from "./i18n.js";
import { followupBlock } from "./followup.js";

const KEY = "tp.notices";
const KEEP = 100;

export class Inbox {
  constructor(link, role) { this.link = link; this.role = role; this.items = load(KEY, []); this.node = null; }

  add(frame) {
    if (this.items.some((n) => n.notice_id === frame.notice_id)) return;
    const item = { notice_id: frame.notice_id, kind: frame.kind, title: frame.title, body: frame.body,
                   tour_id: frame.tour_id, alert_id: frame.alert_id || null, read: false, at: Date.now() };
    if (Array.isArray(frame.choices) && frame.choices.length) {
      Object.assign(item, { choices: frame.choices.map(String), chosen: null, reply: null, delivered: false });
    }
    this.items.unshift(item);
    this.items = this.items.slice(0, KEEP);
    this.keep();
  }

  keep() { save(KEY, this.items); this.render(); }

  markRead(item) {
    item.read = true;
    this.link.send({ type: "notice_read", id: newId("r"), notice_id: item.notice_id, at: new Date().toISOString() });
    this.keep();
  }

  choose(item, n) {
    const id = newId("nr");
    Object.assign(item, { chosen: n, reply: id, delivered: false });
    this.link.send({ type: "notice_reply", id, notice_id: item.notice_id, choice: n, at: new Date().toISOString() });
    this.keep();
  }

  /* the outbox delivered a reply: only the latest choice's ack says "received" */
  acked(entry) {
    const replies = ["notice_reply", "followup_reply"];
    const item = replies.includes(entry.msg.type) && this.items.find((n) => n.reply === entry.msg.id);
    if (item) { item.delivered = true; this.keep(); }
  }

  failed(entry) {
    const item = ["notice_reply", "followup_reply"].includes(entry.msg.type) &&
      this.items.find((n) => n.reply === entry.msg.id);
    if (item) { Object.assign(item, { chosen: null, satisfied: null, reply: null }); this.keep(); }
  }

  view(titleKey) {
    this.node = el("ol", { cls: "notices", "aria-live": "polite" });
    this.render();
    return el("section", { cls: "card", "aria-labelledby": "notices-h" }, [
      el("h2", { id: "notices-h", text: t(titleKey || "notices.title") }), this.node]);
  }

  render() {
    if (!this.node) return;
    const fresh = this.items.length ? [] : [el("li", { cls: "muted", text: t("notices.empty") })];
    for (const item of this.items) {
      const unread = !item.read;
      fresh.push(el("li", { cls: `notice kind-${item.kind}`, "data-tp": "notice", "data-notice-id": item.notice_id,
                            "data-read": String(item.read) }, [
        el("span", { cls: "tag", text: t(`kind.${item.kind}`) }),
        el("h3", { text: item.title }),
        el("p", { text: item.body }),
        item.choices ? this.choices(item) : null,
        item.kind === "followup" && this.role === "traveller" ? followupBlock(this, item) : null,
        unread ? el("button", { type: "button", cls: "btn", "data-tp": "notice-read", text: t("notice.read"),
                                onclick: () => this.markRead(item) })
               : el("span", { cls: "muted", text: t("notice.isread") }),
      ]));
    }
    keepUnchanged(this.node, fresh);
  }

  choices(item) {
    const label = `choices-${item.notice_id.replace(/[^A-Za-z0-9_-]/g, "_")}`;
    const chosen = item.chosen === null || item.chosen === undefined ? null : item.chosen;
    return el("div", { cls: "choices" }, [
      el("p", { id: label, cls: "label", text: t("choice.pick") }),
      el("div", { cls: "stack", role: "group", "aria-labelledby": label },
        item.choices.map((text, n) => el("button", {
          type: "button", cls: "choice wide", "data-tp": `choice-${n}`, "aria-pressed": String(n === chosen),
          text: n === chosen ? `✓ ${text}` : text, onclick: () => this.choose(item, n) }))),
      chosen === null ? null : el("p", { cls: "status", role: "status",
        text: t(item.delivered ? "choice.delivered" : "choice.queued", { choice: item.choices[chosen] }) }),
    ]);
  }
}
