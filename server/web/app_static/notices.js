/* The notices inbox (traveller and guide): pushed notices kept on the phone, newest first, each with a read
 * receipt (`notice_read`, through the outbox like every other message). */
import { el, clear, load, save, newId } from "./dom.js";
import { t } from "./i18n.js";

const KEY = "tp.notices";
const KEEP = 100;

export class Inbox {
  constructor(link) { this.link = link; this.items = load(KEY, []); this.node = null; }

  add(frame) {
    if (this.items.some((n) => n.notice_id === frame.notice_id)) return;
    this.items.unshift({ notice_id: frame.notice_id, kind: frame.kind, title: frame.title, body: frame.body,
                         tour_id: frame.tour_id, read: false, at: Date.now() });
    this.items = this.items.slice(0, KEEP);
    save(KEY, this.items);
    this.render();
  }

  markRead(item) {
    item.read = true;
    save(KEY, this.items);
    this.link.send({ type: "notice_read", id: newId("r"), notice_id: item.notice_id, at: new Date().toISOString() });
    this.render();
  }

  view(titleKey) {
    this.node = el("ol", { cls: "notices", "aria-live": "polite" });
    this.render();
    return el("section", { cls: "card", "aria-labelledby": "notices-h" }, [
      el("h2", { id: "notices-h", text: t(titleKey || "notices.title") }), this.node]);
  }

  render() {
    if (!this.node) return;
    clear(this.node);
    if (!this.items.length) this.node.append(el("li", { cls: "muted", text: t("notices.empty") }));
    for (const item of this.items) {
      const unread = !item.read;
      this.node.append(el("li", { cls: `notice kind-${item.kind}`, "data-tp": "notice", "data-notice-id": item.notice_id,
                                  "data-read": String(item.read) }, [
        el("span", { cls: "tag", text: t(`kind.${item.kind}`) }),
        el("h3", { text: item.title }),
        el("p", { text: item.body }),
        unread ? el("button", { type: "button", cls: "btn", "data-tp": "notice-read", text: t("notice.read"),
                                onclick: () => this.markRead(item) })
               : el("span", { cls: "muted", text: t("notice.isread") }),
      ]));
    }
  }
}
