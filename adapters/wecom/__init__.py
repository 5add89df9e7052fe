"""WeCom (企业微信): patients through WeChat Customer Service (微信客服), care-team group chats,
application messages to page staff, external contacts (welcome, tags, contact-me QR codes) and
customer groups. See docs/wecom.md."""
