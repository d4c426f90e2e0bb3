/* tourpulse board: one way to say an alert to a person, a port of alerts/rules/say.py (same sentences, same
 * labels: change both together). TP.said.say(alert, lang, now) -> {sentence, fields: [{label, text, href}]}: a
 * dispatched resource is its partner, capacity and a tel: link; a location is coordinates with a map link; times
 * are the browser's local clock with their age; a complaint is the traveller's own words. Never raw details.
 * TP.said.paged(alert, lang) -> [{name, text, state}]: who was paged and whether they were reached.
 * TP.said.fill(node, alert, lang) writes the saying into a node as text and links (never markup).
 */
(function () {
  "use strict";
  const TP = (window.TP = window.TP || {});
  const el = TP.dom.el;

  const MAP_URL = "https://www.openstreetmap.org/?mlat={lat}&mlon={lon}#map=16/{lat}/{lon}";
  const RESOURCE_KINDS = ["vehicle", "lodging", "medical", "guide", "interpreter"];
  const LABELS = {
    en: {
      severity: "Severity", tour: "Tour", region: "Region", level: "Escalation level", opened: "Opened",
      affected: "Travellers affected", location: "Location", guide: "Guide", words: "In their words",
      ratings: "Ratings", due: "Was due", waiting: "Incidents waiting", dispatched: "Sent ({kind})",
      shortfall: "Short by", assignee: "Assigned to",
      low: "low", medium: "medium", high: "high", critical: "critical",
      vehicle: "vehicle", lodging: "lodging", medical: "medical", guide_r: "guide", interpreter: "interpreter",
      paged: "Paged", reached: "reached", retrying: "retrying", failed: "not reached",
    },
    zh: {
      severity: "严重程度", tour: "团", region: "区域", level: "升级级别", opened: "发生时间", affected: "受影响游客",
      location: "位置", guide: "导游", words: "游客原话", ratings: "评分人数", due: "应完成时间",
      waiting: "等待中的事件", dispatched: "已派出（{kind}）", shortfall: "缺口", assignee: "负责人",
      low: "低", medium: "中", high: "高", critical: "紧急",
      vehicle: "车辆", lodging: "住宿", medical: "医疗", guide_r: "导游", interpreter: "翻译",
      paged: "已通知", reached: "已送达", retrying: "重试中", failed: "未送达",
    },
  };
  const SENTENCES = {
    en: {
      incident: "{incident} on tour {tour}: {summary}",
      urgent_complaint: "Urgent complaint on tour {tour}: a traveller rated {score}",
      complaint: "Complaint on tour {tour}",
      score_below_threshold: "Tour {tour} scores {mean} on {day}, below {threshold}",
      score_drop: "Tour {tour} dropped from {previous} to {mean} on {day}",
      sla_breach: "Missed deadline on tour {tour}: {summary}",
      pool_exhausted: "No {resource} free in {region}",
      category_share: "{category} complaints are {share} of route {route}",
      other: "{summary}",
    },
    zh: {
      incident: "{tour} 团发生{incident}：{summary}",
      urgent_complaint: "{tour} 团有紧急投诉：游客评分 {score}",
      complaint: "{tour} 团有投诉",
      score_below_threshold: "{tour} 团 {day} 平均分 {mean}，低于 {threshold}",
      score_drop: "{tour} 团 {day} 评分由 {previous} 降至 {mean}",
      sla_breach: "{tour} 团超时未处理：{summary}",
      pool_exhausted: "{region} 没有空闲的{resource}",
      category_share: "线路 {route} 的投诉中{category}占 {share}",
      other: "{summary}",
    },
  };
  const INCIDENT_KINDS = {
    zh: { medical: "医疗事件", accident: "事故", vehicle_breakdown: "车辆故障", lodging_problem: "住宿问题",
      weather: "恶劣天气", attraction_closed: "景点关闭", complaint: "投诉", lost_document: "证件丢失",
      delay: "延误", conflict: "冲突", other: "事件" },
    en: {},
  };

  function format(template, facts) {
    return template.replace(/\{(\w+)\}/g, function (_m, name) {
      const v = facts[name];
      return v === undefined || v === null ? "-" : String(v);
    });
  }

  function two(n) { return (n < 10 ? "0" : "") + n; }

  function age(seconds, lang) {
    const s = Math.max(0, seconds);
    const minutes = Math.floor(s / 60), hours = Math.floor(s / 3600), days = Math.floor(s / 86400);
    if (lang === "zh") {
      return minutes < 1 ? "刚刚" : hours < 1 ? minutes + " 分钟前" : days < 1 ? hours + " 小时前" : days + " 天前";
    }
    return minutes < 1 ? "just now" : hours < 1 ? minutes + " min ago" : days < 1 ? hours + " h ago" : days + " d ago";
  }

  function clock(epochMs, nowMs, lang) {
    const at = new Date(epochMs), today = new Date(nowMs);
    let text = two(at.getHours()) + ":" + two(at.getMinutes());
    if (at.toDateString() !== today.toDateString()) {
      text = at.getFullYear() + "-" + two(at.getMonth() + 1) + "-" + two(at.getDate()) + " " + text;
    }
    return text + " (" + age((nowMs - epochMs) / 1000, lang) + ")";
  }

  function isMap(v) { return v !== null && typeof v === "object" && !Array.isArray(v); }
  function isNum(v) { return typeof v === "number" && isFinite(v); }

  function say(alert, lang, nowMs) {
    lang = LABELS[lang] ? lang : "en";
    const w = LABELS[lang];
    const d = isMap(alert.details) ? alert.details : {};
    const kind = String(alert.kind);
    const severity = String(alert.severity);
    const facts = {
      tour: alert.tour_id || "-", summary: alert.summary || "", region: alert.region || "-", score: d.score,
      mean: d.mean, day: d.day, threshold: d.threshold, previous: d.previous_mean, route: d.route,
      category: d.category, share: isNum(d.share) ? Math.round(d.share * 100) + "%" : "-",
      resource: w[d.kind === "guide" ? "guide_r" : String(d.kind)] || d.kind,
      incident: INCIDENT_KINDS[lang][String(d.kind)] || String(d.kind || "").replace(/_/g, " "),
    };
    if (kind === "incident") {
      facts.summary = d.summary || alert.summary || "";
      if (lang === "en") facts.incident = facts.incident.charAt(0).toUpperCase() + facts.incident.slice(1);
    }
    const sentence = format(SENTENCES[lang][kind] || SENTENCES[lang].other, facts);
    const fields = [{ label: w.severity, text: w[severity] || severity }];
    if (alert.tour_id) fields.push({ label: w.tour, text: String(alert.tour_id) });
    fields.push({ label: w.region, text: String(alert.region || "-") });
    if ((kind === "urgent_complaint" || kind === "complaint") && d.comment) {
      fields.push({ label: w.words, text: "“" + d.comment + "”" });
    }
    if ((kind === "score_below_threshold" || kind === "score_drop") && d.count !== undefined && d.count !== null) {
      fields.push({ label: w.ratings, text: String(d.count) });
    }
    if (kind === "incident") {
      if (d.travellers_affected !== undefined && d.travellers_affected !== null) {
        fields.push({ label: w.affected, text: String(d.travellers_affected) });
      }
      if (d.guide) fields.push({ label: w.guide, text: String(d.guide) });
    }
    if (isMap(d.location) && isNum(d.location.lat) && isNum(d.location.lon)) {
      const lat = d.location.lat.toFixed(5), lon = d.location.lon.toFixed(5);
      fields.push({ label: w.location, text: lat + ", " + lon, href: format(MAP_URL, { lat: lat, lon: lon }) });
    }
    RESOURCE_KINDS.forEach(function (rk) {
      const sent = d["dispatched_" + rk];
      const r = isMap(sent) ? sent.dispatched : null;
      if (isMap(r)) {
        let text = String(r.partner || "-");
        if (r.capacity !== undefined && r.capacity !== null) text += " · " + r.capacity;
        const contact = String(r.contact || "");
        const phone = contact.replace(/[^0-9+]/g, "");
        if (contact) text += " · " + contact;
        fields.push({ label: format(w.dispatched, { kind: w[rk === "guide" ? "guide_r" : rk] }), text: text,
          href: phone.length >= 5 ? "tel:" + phone : null });
      }
      const short = d["shortfall_" + rk];
      if (isNum(short) && short > 0) fields.push({ label: w.shortfall, text: String(short) });
    });
    const due = TP.dom.parseTime(d.due);
    if (kind === "sla_breach" && due) fields.push({ label: w.due, text: clock(due, nowMs, lang) });
    if (kind === "pool_exhausted" && Array.isArray(d.incidents)) {
      fields.push({ label: w.waiting, text: String(d.incidents.length) });
    }
    if (Number(alert.escalation_level) > 0) fields.push({ label: w.level, text: String(alert.escalation_level) });
    if (alert.assignee) fields.push({ label: w.assignee, text: String(alert.assignee) });
    const opened = TP.dom.parseTime(alert.opened_at);
    if (opened) fields.push({ label: w.opened, text: clock(opened, nowMs, lang) });
    return { sentence: sentence, fields: fields };
  }

  function paged(alert, lang) {
    const w = LABELS[LABELS[lang] ? lang : "en"];
    const notified = isMap(alert.notified) ? alert.notified : {};
    return Object.keys(notified).sort().map(function (id) {
      const n = isMap(notified[id]) ? notified[id] : {};
      const state = n.result === "sent" ? "reached" : n.final ? "failed" : "retrying";
      let text = (n.name || id) + " " + (state === "reached" ? "✓ " : "✗ ") + w[state];
      if (n.channel) text += " (" + n.channel + (state === "reached" ? "" : ", " + n.result) + ")";
      return { name: n.name || id, text: text, state: state };
    });
  }

  function link(field) {
    const href = typeof field.href === "string" && /^(tel:|https:\/\/)/.test(field.href) ? field.href : null;
    if (!href) return document.createTextNode(field.text);
    return el("a", { text: field.text, attrs: { href: href, rel: "noopener noreferrer", target: "_blank" } });
  }

  /* The saying into `node`: the sentence, then "label: text" for each field; text and links only. */
  function fill(node, alert, lang, nowMs) {
    const said = say(alert, lang, nowMs || Date.now());
    node.textContent = "";
    node.appendChild(el("span", { cls: "said-sentence", text: said.sentence }));
    const w = LABELS[LABELS[lang] ? lang : "en"];
    said.fields.forEach(function (f) {
      // the card's badges say these already, and its age ticks (an age written here would go stale)
      if (f.label === w.severity || f.label === w.opened || f.label === w.level) return;
      node.appendChild(document.createTextNode(" · "));
      node.appendChild(el("span", { cls: "said-label", text: f.label + ": " }));
      node.appendChild(link(f));
    });
    return said;
  }

  /* Who was paged into `node` (hidden when nobody was). */
  function fillPaged(node, alert, lang) {
    const people = paged(alert, lang);
    node.textContent = "";
    node.hidden = people.length === 0;
    if (!people.length) return;
    node.appendChild(el("span", { cls: "said-label", text: LABELS[LABELS[lang] ? lang : "en"].paged + ": " }));
    people.forEach(function (p, i) {
      if (i) node.appendChild(document.createTextNode(" · "));
      node.appendChild(el("span", { cls: "paged-person", text: p.text, data: { state: p.state } }));
    });
  }

  TP.said = { say: say, paged: paged, fill: fill, fillPaged: fillPaged };
})();
