<?xml version="1.0" encoding="utf-8"?>
<!DOCTYPE TS>
<TS version="2.1" language="zh_CN" sourcelanguage="en">
<context>
    <name>AnnouncementView</name>
    <message>
        <location filename="../../app/ui/detail.py" line="+78"/>
        <source>Announcement text</source>
        <translation>公告内容</translation>
    </message>
    <message>
        <location line="+1"/>
        <source>Link:</source>
        <translation>链接：</translation>
    </message>
    <message>
        <location line="+5"/>
        <source>Link address</source>
        <translation>链接地址</translation>
    </message>
    <message>
        <location line="+2"/>
        <source>&amp;Open link…</source>
        <translation>打开链接(&amp;O)…</translation>
    </message>
    <message>
        <location line="+1"/>
        <source>Open the link in your web browser</source>
        <translation>在网页浏览器中打开链接</translation>
    </message>
    <message>
        <location line="+3"/>
        <source>This link cannot be opened: only web addresses (http, https) are allowed.</source>
        <translation>无法打开此链接：只允许网页地址（http、https）。</translation>
    </message>
    <message>
        <location line="+4"/>
        <source>Ac&amp;knowledge</source>
        <translation>确认收到(&amp;K)</translation>
    </message>
    <message>
        <location line="+2"/>
        <source>Acknowledge this announcement</source>
        <translation>确认收到此公告</translation>
    </message>
    <message>
        <location line="+2"/>
        <source>Confirm that you have read this urgent announcement; the sender is told.</source>
        <translation>确认您已阅读此紧急公告；发布者会收到通知。</translation>
    </message>
    <message>
        <location line="+89"/>
        <source>Published %1</source>
        <translation>发布于 %1</translation>
    </message>
    <message>
        <location line="+2"/>
        <source>Received %1</source>
        <translation>收到于 %1</translation>
    </message>
</context>
<context>
    <name>BackendProfile</name>
    <message>
        <location filename="../../app/ui/login_dialog.py" line="+59"/>
        <source>Server type: token login (%1)</source>
        <translation>服务器类型：令牌登录（%1）</translation>
    </message>
    <message>
        <location line="+4"/>
        <source>Server type: organisation sign-in (%1)</source>
        <translation>服务器类型：组织登录（%1）</translation>
    </message>
    <message>
        <location line="+4"/>
        <source>Server type: organisation sign-in</source>
        <translation>服务器类型：组织登录</translation>
    </message>
    <message>
        <location line="+1"/>
        <source>Server type: companion</source>
        <translation>服务器类型：配套服务器</translation>
    </message>
</context>
<context>
    <name>DiagnoseWindow</name>
    <message>
        <location filename="../../app/ui/diagnose_window.py" line="+42"/>
        <source>Diagnose connection</source>
        <translation>诊断连接</translation>
    </message>
    <message>
        <location line="+5"/>
        <source>Copy report</source>
        <translation>复制报告</translation>
    </message>
    <message>
        <location line="+1"/>
        <source>Check again</source>
        <translation>重新检查</translation>
    </message>
    <message>
        <location line="+18"/>
        <source>Checking every hop to the server…</source>
        <translation>正在检查通往服务器的每一个环节…</translation>
    </message>
    <message>
        <location line="+13"/>
        <source>A hop failed: the first FAIL names it, and what to do.</source>
        <translation>有环节失败：第一个 FAIL 指出是哪一个环节，以及如何处理。</translation>
    </message>
    <message>
        <location line="+2"/>
        <source>No hop failed.</source>
        <translation>所有环节均正常。</translation>
    </message>
</context>
<context>
    <name>HistoryModel</name>
    <message>
        <location filename="../../app/ui/history_model.py" line="+127"/>
        <source>Title</source>
        <translation>标题</translation>
    </message>
    <message>
        <location line="+0"/>
        <source>Priority</source>
        <translation>优先级</translation>
    </message>
    <message>
        <location line="+0"/>
        <source>Date</source>
        <translation>日期</translation>
    </message>
    <message>
        <location line="+11"/>
        <source>%1 (updated)</source>
        <translation>%1（已更新）</translation>
    </message>
    <message>
        <location line="+4"/>
        <source>Withdrawn</source>
        <translation>已撤回</translation>
    </message>
    <message>
        <location line="+20"/>
        <source>%1 (withdrawn)</source>
        <translation>%1（已撤回）</translation>
    </message>
    <message>
        <location line="+1"/>
        <source>%1 (unread)</source>
        <translation>%1（未读）</translation>
    </message>
</context>
<context>
    <name>HistoryWindow</name>
    <message>
        <location filename="../../app/ui/history_window.py" line="+108"/>
        <source>Announcements — %1</source>
        <translation>公告 — %1</translation>
    </message>
    <message>
        <location line="+12"/>
        <source>Search announcements (Ctrl+F)</source>
        <translation>搜索公告 (Ctrl+F)</translation>
    </message>
    <message>
        <location line="+2"/>
        <source>Search announcements</source>
        <translation>搜索公告</translation>
    </message>
    <message>
        <location line="+16"/>
        <source>Announcements</source>
        <translation>公告</translation>
    </message>
    <message>
        <location line="+33"/>
        <source>&amp;Mark read</source>
        <translation>标为已读(&amp;M)</translation>
    </message>
    <message>
        <location line="+1"/>
        <source>Mark the selected announcements read</source>
        <translation>将所选公告标为已读</translation>
    </message>
    <message>
        <location line="+262"/>
        <source>Mark &amp;shown read</source>
        <translation>将显示的标为已读(&amp;S)</translation>
    </message>
    <message>
        <location line="+1"/>
        <source>Mark the announcements shown read</source>
        <translation>将显示的公告标为已读</translation>
    </message>
    <message>
        <location line="+3"/>
        <source>Mark &amp;all read</source>
        <translation>全部标为已读(&amp;A)</translation>
    </message>
    <message>
        <location line="+1"/>
        <source>Mark all announcements read</source>
        <translation>将所有公告标为已读</translation>
    </message>
    <message>
        <location line="-263"/>
        <source>&amp;Close</source>
        <translation>关闭(&amp;C)</translation>
    </message>
    <message>
        <location line="+246"/>
        <source>No announcements match “%1”.</source>
        <translation>没有与“%1”匹配的公告。</translation>
    </message>
    <message>
        <location line="+2"/>
        <source>No announcements yet. New ones will appear here.</source>
        <translation>暂无公告。新公告将显示在这里。</translation>
    </message>
    <message>
        <location line="-4"/>
        <source>Select an announcement to read it.</source>
        <translation>选择一条公告以阅读。</translation>
    </message>
    <message>
        <location line="-4"/>
        <source>%1 unread</source>
        <translation>%1 条未读</translation>
    </message>
</context>
<context>
    <name>LinkConfirmation</name>
    <message>
        <location filename="../../app/ui/widgets.py" line="+146"/>
        <source>Open link?</source>
        <translation>打开链接？</translation>
    </message>
    <message>
        <location line="+3"/>
        <source>Open this address in your web browser?</source>
        <translation>要在网页浏览器中打开此地址吗？</translation>
    </message>
    <message>
        <location line="+5"/>
        <source>Open</source>
        <translation>打开</translation>
    </message>
    <message>
        <location line="+4"/>
        <source>Cancel</source>
        <translation>取消</translation>
    </message>
</context>
<context>
    <name>LoginDialog</name>
    <message>
        <location filename="../../app/ui/login_dialog.py" line="+46"/>
        <source>Log in — %1</source>
        <translation>登录 — %1</translation>
    </message>
    <message>
        <location line="+9"/>
        <source>Set by your IT department: this setting cannot be changed here.</source>
        <translation>由您的 IT 部门设定：此设置无法在此更改。</translation>
    </message>
    <message>
        <location line="+9"/>
        <source>Log in</source>
        <translation>登录</translation>
    </message>
    <message>
        <location line="+2"/>
        <source>Log in to your organisation&apos;s announcement server.</source>
        <translation>登录到您所在机构的公告服务器。</translation>
    </message>
    <message>
        <location line="+12"/>
        <source>Server address</source>
        <translation>服务器地址</translation>
    </message>
    <message>
        <location line="+2"/>
        <source>User name</source>
        <translation>用户名</translation>
    </message>
    <message>
        <location line="+3"/>
        <source>Password</source>
        <translation>密码</translation>
    </message>
    <message>
        <location line="+1"/>
        <source>Sign in with your organisation account</source>
        <translation>使用组织账户登录</translation>
    </message>
    <message>
        <location line="+4"/>
        <source>or log in with a password:</source>
        <translation>或使用密码登录：</translation>
    </message>
    <message>
        <location line="+11"/>
        <source>&amp;Server address:</source>
        <translation>服务器地址(&amp;S)：</translation>
    </message>
    <message>
        <location line="+2"/>
        <source>&amp;User name:</source>
        <translation>用户名(&amp;U)：</translation>
    </message>
    <message>
        <location line="+1"/>
        <source>&amp;Password:</source>
        <translation>密码(&amp;P)：</translation>
    </message>
    <message>
        <location line="+9"/>
        <source>This address is not encrypted (http://): your password would travel in plain text. Use https:// unless your IT department says otherwise.</source>
        <translation>此地址未加密（http://）：您的密码将以明文传输。除非 IT 部门另有说明，请使用 https://。</translation>
    </message>
    <message>
        <location line="+17"/>
        <source>Logging in</source>
        <translation>正在登录</translation>
    </message>
    <message>
        <location line="+1"/>
        <source>Logging in…</source>
        <translation>正在登录…</translation>
    </message>
    <message>
        <location line="+9"/>
        <source>Waiting for the sign-in in your browser…</source>
        <translation>正在等待您在浏览器中完成登录…</translation>
    </message>
    <message>
        <location line="+5"/>
        <source>Signing in</source>
        <translation>正在登录</translation>
    </message>
    <message>
        <location line="+1"/>
        <source>Copy the address</source>
        <translation>复制地址</translation>
    </message>
    <message>
        <location line="+3"/>
        <source>If no browser window opened, paste this address into your browser.</source>
        <translation>如果没有打开浏览器窗口，请将此地址粘贴到浏览器中。</translation>
    </message>
    <message>
        <location line="+4"/>
        <source>Cancel sign-in</source>
        <translation>取消登录</translation>
    </message>
    <message>
        <location line="+22"/>
        <source>&amp;Log in</source>
        <translation>登录(&amp;L)</translation>
    </message>
    <message>
        <location line="+3"/>
        <source>Cancel</source>
        <translation>取消</translation>
    </message>
    <message>
        <location line="+141"/>
        <source>The sign-in was cancelled. Nothing was changed.</source>
        <translation>登录已取消，未作任何更改。</translation>
    </message>
    <message>
        <location line="+3"/>
        <source>The sign-in was not finished within %1 minutes. Nothing was changed; try again.</source>
        <translation>登录未在 %1 分钟内完成，未作任何更改，请重试。</translation>
    </message>
    <message>
        <location line="+3"/>
        <source>This server does not offer sign-in with an organisation account.</source>
        <translation>此服务器不支持使用组织账户登录。</translation>
    </message>
    <message>
        <location line="+3"/>
        <source>Your organisation&apos;s sign-in did not succeed: %1</source>
        <translation>组织账户登录未成功：%1</translation>
    </message>
    <message>
        <location line="+3"/>
        <source>Your organisation&apos;s sign-in did not succeed.</source>
        <translation>组织账户登录未成功。</translation>
    </message>
    <message>
        <location line="+46"/>
        <source>Enter your user name.</source>
        <translation>请输入用户名。</translation>
    </message>
    <message>
        <location line="+4"/>
        <source>Enter your password.</source>
        <translation>请输入密码。</translation>
    </message>
    <message>
        <location line="+36"/>
        <source>The server refused the login: %1</source>
        <translation>服务器拒绝了登录：%1</translation>
    </message>
    <message>
        <location line="+1"/>
        <source>The user name or password is wrong. Check both and try again.</source>
        <translation>用户名或密码错误。请检查后重试。</translation>
    </message>
    <message>
        <location line="+3"/>
        <source>The server cannot be reached. Check the server address and your network connection.</source>
        <translation>无法访问服务器。请检查服务器地址和网络连接。</translation>
    </message>
    <message>
        <location line="+5"/>
        <source>The server&apos;s certificate is not trusted. If your organisation uses its own certificate authority, ask IT to set the CA bundle setting.</source>
        <translation>服务器的证书不受信任。如果您所在机构使用自己的证书颁发机构，请让 IT 部门设置 CA 证书包。</translation>
    </message>
    <message>
        <location line="+4"/>
        <source>This address is not an announcement server. Check the server address.</source>
        <translation>此地址不是公告服务器。请检查服务器地址。</translation>
    </message>
    <message>
        <location line="+2"/>
        <source>Your login cannot be saved: the system keyring is not available.</source>
        <translation>无法保存登录信息：系统密钥环不可用。</translation>
    </message>
    <message>
        <location line="+3"/>
        <source>The proxy on the way asks for a user name and password: give them in the proxy window, then log in again.</source>
        <translation>网络中的代理服务器要求提供用户名和密码：请在代理服务器窗口中填写，然后重新登录。</translation>
    </message>
</context>
<context>
    <name>Notices</name>
    <message>
        <location filename="../../app/ui/notices.py" line="+54"/>
        <source>Announcement history damaged</source>
        <translation>公告历史已损坏</translation>
    </message>
    <message>
        <location line="+2"/>
        <source>Your announcement history could not be read: the file is damaged. It was moved aside to:
%1

Tray Notifier starts with a new, empty history. New announcements arrive as usual.</source>
        <translation>无法读取您的公告历史：文件已损坏。它已被移到：
%1

Tray Notifier 将使用一个新的空白历史。新公告照常接收。</translation>
    </message>
    <message>
        <location line="+8"/>
        <source>Settings</source>
        <translation>设置</translation>
    </message>
    <message>
        <location line="+1"/>
        <source>The settings could not be saved: %1</source>
        <translation>无法保存设置：%1</translation>
    </message>
    <message>
        <location line="+5"/>
        <source>Start at login</source>
        <translation>登录时启动</translation>
    </message>
    <message>
        <location line="+1"/>
        <source>Start at login could not be changed: %1</source>
        <translation>无法更改“登录时启动”：%1</translation>
    </message>
    <message>
        <location line="+5"/>
        <source>Language</source>
        <translation>语言</translation>
    </message>
    <message>
        <location line="+1"/>
        <source>The new language is used after Tray Notifier restarts.</source>
        <translation>新语言将在 Tray Notifier 重新启动后生效。</translation>
    </message>
    <message>
        <location line="+6"/>
        <source>Keyring not available</source>
        <translation>密钥环不可用</translation>
    </message>
    <message>
        <location line="+2"/>
        <source>You are logged in, but your login cannot be saved: the system keyring is not available or locked.

Stay logged in for this run only? You will have to log in again next time.</source>
        <translation>您已登录，但无法保存登录信息：系统密钥环不可用或已锁定。

是否仅在本次运行期间保持登录？下次启动时需要重新登录。</translation>
    </message>
</context>
<context>
    <name>Notifier</name>
    <message>
        <location filename="../../app/ui/notifier.py" line="+517"/>
        <source>Open</source>
        <translation>打开</translation>
    </message>
    <message>
        <location line="+2"/>
        <source>Acknowledge</source>
        <translation>确认收到</translation>
    </message>
    <message>
        <location line="+39"/>
        <source>Updated: %1</source>
        <translation>已更新：%1</translation>
    </message>
    <message>
        <location line="+2"/>
        <source>Reminder: %1</source>
        <translation>提醒：%1</translation>
    </message>
    <message>
        <location line="+5"/>
        <source>1 new announcement</source>
        <translation>1 条新公告</translation>
    </message>
    <message numerus="yes">
        <location line="+2"/>
        <source>%n new announcements</source>
        <translation>
            <numerusform>%n 条新公告</numerusform>
        </translation>
    </message>
    <message>
        <location line="+2"/>
        <source>Click to read them in Announcements.</source>
        <translation>点击在“公告”窗口中阅读。</translation>
    </message>
    <message>
        <location line="+3"/>
        <source>Not connected</source>
        <translation>未连接</translation>
    </message>
    <message>
        <location line="+2"/>
        <source>The announcement server has not been reachable for a few minutes. %1 keeps trying.</source>
        <translation>公告服务器已有几分钟无法访问。%1 会继续尝试连接。</translation>
    </message>
    <message>
        <location line="+4"/>
        <source>Connected again</source>
        <translation>已重新连接</translation>
    </message>
    <message>
        <location line="+0"/>
        <source>Announcements are arriving again.</source>
        <translation>公告已恢复接收。</translation>
    </message>
</context>
<context>
    <name>Priority</name>
    <message>
        <location filename="../../app/ui/widgets.py" line="-121"/>
        <source>Low</source>
        <translation>低</translation>
    </message>
    <message>
        <location line="+1"/>
        <source>Normal</source>
        <translation>普通</translation>
    </message>
    <message>
        <location line="+1"/>
        <source>High</source>
        <translation>高</translation>
    </message>
    <message>
        <location line="+1"/>
        <source>Urgent</source>
        <translation>紧急</translation>
    </message>
    <message>
        <location line="+46"/>
        <source>Priority: %1</source>
        <translation>优先级：%1</translation>
    </message>
</context>
<context>
    <name>ProxyDialog</name>
    <message>
        <location filename="../../app/ui/proxy_dialog.py" line="+40"/>
        <source>Proxy credentials — %1</source>
        <translation>代理服务器凭据 — %1</translation>
    </message>
    <message>
        <location line="+4"/>
        <source>The proxy asks for a user name and password</source>
        <translation>代理服务器要求提供用户名和密码</translation>
    </message>
    <message>
        <location line="+6"/>
        <source>The proxy refused these credentials. Check them and try again.</source>
        <translation>代理服务器拒绝了这些凭据。请检查后重试。</translation>
    </message>
    <message>
        <location line="+5"/>
        <source>Proxy user name</source>
        <translation>代理服务器用户名</translation>
    </message>
    <message>
        <location line="+3"/>
        <source>Proxy password</source>
        <translation>代理服务器密码</translation>
    </message>
    <message>
        <location line="+3"/>
        <source>&amp;User name:</source>
        <translation>用户名(&amp;U)：</translation>
    </message>
    <message>
        <location line="+1"/>
        <source>&amp;Password:</source>
        <translation>密码(&amp;P)：</translation>
    </message>
    <message>
        <location line="+3"/>
        <source>They are kept in the system keyring and sent to this proxy only. The network administrator can tell you which account to use.</source>
        <translation>凭据保存在系统密钥环中，只会发送给此代理服务器。应使用哪个账户，请咨询网络管理员。</translation>
    </message>
    <message>
        <location line="+11"/>
        <source>&amp;Save</source>
        <translation>保存(&amp;S)</translation>
    </message>
    <message>
        <location line="+3"/>
        <source>Cancel</source>
        <translation>取消</translation>
    </message>
    <message>
        <location line="+18"/>
        <source>Proxy: %1</source>
        <translation>代理服务器：%1</translation>
    </message>
    <message>
        <location line="+19"/>
        <source>Enter the proxy user name.</source>
        <translation>请输入代理服务器用户名。</translation>
    </message>
    <message>
        <location line="+4"/>
        <source>Enter the proxy password.</source>
        <translation>请输入代理服务器密码。</translation>
    </message>
    <message>
        <location line="+15"/>
        <source>The credentials cannot be saved: the system keyring is not available or locked. Unlock it and try again.</source>
        <translation>无法保存凭据：系统密钥环不可用或已锁定。请解锁后重试。</translation>
    </message>
</context>
<context>
    <name>ServerAddress</name>
    <message>
        <location filename="../../app/ui/login_dialog.py" line="-463"/>
        <source>Enter the server address, for example https://announcements.example.org.</source>
        <translation>请输入服务器地址，例如 https://announcements.example.org。</translation>
    </message>
    <message>
        <location line="+5"/>
        <source>The server address must start with https:// (or http:// for a test server).</source>
        <translation>服务器地址必须以 https:// 开头（测试服务器可用 http://）。</translation>
    </message>
    <message>
        <location line="+5"/>
        <source>This is not a valid server address. Use the form https://announcements.example.org.</source>
        <translation>这不是有效的服务器地址。请使用 https://announcements.example.org 这样的格式。</translation>
    </message>
</context>
<context>
    <name>SettingsDialog</name>
    <message>
        <location filename="../../app/ui/settings_dialog.py" line="+42"/>
        <source>All announcements</source>
        <extracomment>languages offered: (config value, name shown). Language names are written in their own language so that anyone can find theirs; &quot;&quot; follows the system.</extracomment>
        <translation>所有公告</translation>
    </message>
    <message>
        <location line="+1"/>
        <source>Normal, high and urgent</source>
        <translation>普通、高和紧急</translation>
    </message>
    <message>
        <location line="+1"/>
        <source>High and urgent</source>
        <translation>高和紧急</translation>
    </message>
    <message>
        <location line="+1"/>
        <source>Urgent only</source>
        <translation>仅紧急</translation>
    </message>
    <message>
        <location line="+32"/>
        <source>Settings — %1</source>
        <translation>设置 — %1</translation>
    </message>
    <message>
        <location line="+12"/>
        <source>Server address</source>
        <translation>服务器地址</translation>
    </message>
    <message>
        <location line="+1"/>
        <source>Start %1 when I log in</source>
        <translation>登录系统时启动 %1</translation>
    </message>
    <message>
        <location line="+5"/>
        <source>Which announcements pop up</source>
        <translation>哪些公告弹出通知</translation>
    </message>
    <message>
        <location line="+2"/>
        <source>&amp;Quiet hours</source>
        <translation>免打扰时段(&amp;Q)</translation>
    </message>
    <message>
        <location line="+2"/>
        <source>Quiet hours</source>
        <translation>免打扰时段</translation>
    </message>
    <message>
        <location line="+3"/>
        <location line="+4"/>
        <source>From</source>
        <translation>从</translation>
    </message>
    <message>
        <location line="-4"/>
        <source>To</source>
        <translation>到</translation>
    </message>
    <message>
        <location line="+2"/>
        <source>Quiet hours: %1</source>
        <translation>免打扰时段：%1</translation>
    </message>
    <message>
        <location line="+5"/>
        <source>to</source>
        <translation>到</translation>
    </message>
    <message>
        <location line="+4"/>
        <source>Only urgent announcements pop up during quiet hours.</source>
        <translation>免打扰时段内只有紧急公告会弹出。</translation>
    </message>
    <message>
        <location line="+9"/>
        <source>System default</source>
        <translation>跟随系统</translation>
    </message>
    <message>
        <location line="+3"/>
        <source>Language</source>
        <translation>语言</translation>
    </message>
    <message>
        <location line="+1"/>
        <source>A new language is used after a restart.</source>
        <translation>新语言将在重新启动后生效。</translation>
    </message>
    <message>
        <location line="+5"/>
        <source> days</source>
        <translation> 天</translation>
    </message>
    <message>
        <location line="+1"/>
        <source>Keep history for this many days</source>
        <translation>历史记录保留天数</translation>
    </message>
    <message>
        <location line="+2"/>
        <source>Open &amp;log folder</source>
        <translation>打开日志文件夹(&amp;L)</translation>
    </message>
    <message>
        <location line="+1"/>
        <source>Open the folder holding the log files</source>
        <translation>打开存放日志文件的文件夹</translation>
    </message>
    <message>
        <location line="+8"/>
        <source>Settings shown greyed out were set by your IT department.</source>
        <translation>灰色显示的设置由您的 IT 部门设定。</translation>
    </message>
    <message>
        <location line="+17"/>
        <source>&amp;Server address:</source>
        <extracomment>the widget that edits each setting (a dotted key of app.core.config)</extracomment>
        <translation>服务器地址(&amp;S)：</translation>
    </message>
    <message>
        <location line="+6"/>
        <source>&amp;Pop up:</source>
        <translation>弹出通知(&amp;P)：</translation>
    </message>
    <message>
        <location line="+1"/>
        <source>&amp;Language:</source>
        <translation>语言(&amp;L)：</translation>
    </message>
    <message>
        <location line="+2"/>
        <source>&amp;Keep history:</source>
        <translation>保留历史(&amp;K)：</translation>
    </message>
    <message>
        <location line="+4"/>
        <source>&amp;Save</source>
        <translation>保存(&amp;S)</translation>
    </message>
    <message>
        <location line="+2"/>
        <source>Cancel</source>
        <translation>取消</translation>
    </message>
    <message>
        <location line="+53"/>
        <source>Set by your IT department: this setting cannot be changed here.</source>
        <translation>由您的 IT 部门设定：此设置无法在此更改。</translation>
    </message>
    <message>
        <location line="+3"/>
        <source>Set by the environment variable %1 for this run.</source>
        <translation>本次运行由环境变量 %1 设定。</translation>
    </message>
    <message>
        <location line="+27"/>
        <source>Quiet hours must start and end at different times.</source>
        <translation>免打扰时段的开始和结束时间不能相同。</translation>
    </message>
</context>
<context>
    <name>ToastWindow</name>
    <message>
        <location filename="../../app/ui/toast_window.py" line="+56"/>
        <source>Notification: %1</source>
        <translation>通知：%1</translation>
    </message>
</context>
<context>
    <name>Tray</name>
    <message>
        <location filename="../../app/ui/tray.py" line="+66"/>
        <source>Tray Notifier menu</source>
        <translation>Tray Notifier 菜单</translation>
    </message>
    <message>
        <location line="+69"/>
        <source>Connected as %1</source>
        <translation>已以 %1 的身份连接</translation>
    </message>
    <message>
        <location line="+2"/>
        <source>Connecting…</source>
        <translation>正在连接…</translation>
    </message>
    <message numerus="yes">
        <location line="+4"/>
        <source>Offline: trying again in %n s</source>
        <translation>
            <numerusform>离线：%n 秒后重试</numerusform>
        </translation>
    </message>
    <message>
        <location line="+2"/>
        <source>Offline: trying again</source>
        <translation>离线：正在重试</translation>
    </message>
    <message>
        <location line="+2"/>
        <source>Not logged in</source>
        <translation>未登录</translation>
    </message>
    <message>
        <location line="+50"/>
        <source>see the log</source>
        <translation>请查看日志</translation>
    </message>
    <message>
        <location line="-48"/>
        <source>Not connected: %1</source>
        <translation>未连接：%1</translation>
    </message>
    <message>
        <location line="+1"/>
        <source>Not connected</source>
        <translation>未连接</translation>
    </message>
    <message>
        <location line="+7"/>
        <source>the server cannot be reached</source>
        <translation>无法连接服务器</translation>
    </message>
    <message>
        <location line="+2"/>
        <source>the server&apos;s certificate is not trusted (ask IT for the CA bundle)</source>
        <translation>服务器证书不受信任（请向 IT 部门索取 CA 证书包）</translation>
    </message>
    <message>
        <location line="+3"/>
        <source>the proxy asks for credentials: run tray-notifier proxy-login --user NAME --password-stdin</source>
        <translation>代理服务器要求提供凭据：请运行 tray-notifier proxy-login --user NAME --password-stdin</translation>
    </message>
    <message>
        <location line="+5"/>
        <source>the proxy refused the stored credentials: run tray-notifier proxy-login --user NAME --password-stdin</source>
        <translation>代理服务器拒绝了保存的凭据：请运行 tray-notifier proxy-login --user NAME --password-stdin</translation>
    </message>
    <message>
        <location line="+5"/>
        <source>the address does not answer like an announcement server (a proxy or a login page may be in the way)</source>
        <translation>该地址的响应不像公告服务器（可能被代理或登录页面拦截）</translation>
    </message>
    <message>
        <location line="+4"/>
        <source>the server refused access to the stream (HTTP 403)</source>
        <translation>服务器拒绝访问消息流（HTTP 403）</translation>
    </message>
    <message>
        <location line="+2"/>
        <source>the stream address does not exist (HTTP 404): check the server address</source>
        <translation>消息流地址不存在（HTTP 404）：请检查服务器地址</translation>
    </message>
    <message>
        <location line="+2"/>
        <source>the server answered in an unexpected way: check the server address</source>
        <translation>服务器的响应不符合预期：请检查服务器地址</translation>
    </message>
    <message>
        <location line="+2"/>
        <source>the server failed: try again later</source>
        <translation>服务器出错：请稍后重试</translation>
    </message>
    <message>
        <location line="+2"/>
        <source>a setting cannot be used: see the log</source>
        <translation>有一项设置无法使用：请查看日志</translation>
    </message>
    <message>
        <location line="+2"/>
        <source>the history file cannot be written: see the log</source>
        <translation>无法写入历史记录文件：请查看日志</translation>
    </message>
    <message>
        <location line="+2"/>
        <source>the system keyring is not available</source>
        <translation>系统密钥环不可用</translation>
    </message>
    <message>
        <location line="+6"/>
        <source>log in again</source>
        <translation>请重新登录</translation>
    </message>
    <message>
        <location line="+2"/>
        <source>unexpected error: see the log</source>
        <translation>意外错误：请查看日志</translation>
    </message>
    <message>
        <location line="+8"/>
        <source>The stored password stopped working: it was changed, or the account is locked. Log in with your current password.</source>
        <translation>保存的密码已失效：密码已被修改，或账户已被锁定。请用当前密码登录。</translation>
    </message>
    <message>
        <location line="+4"/>
        <source>Your login has expired or was ended: log in again.</source>
        <translation>登录已过期或已被结束：请重新登录。</translation>
    </message>
    <message>
        <location line="+5"/>
        <source>Tray Notifier</source>
        <translation>Tray Notifier</translation>
    </message>
    <message>
        <location line="+3"/>
        <source>Not receiving announcements since %1</source>
        <translation>自 %1 起未收到公告</translation>
    </message>
    <message numerus="yes">
        <location line="+5"/>
        <source>%n unread announcement(s)</source>
        <translation>
            <numerusform>%n 条未读公告</numerusform>
        </translation>
    </message>
    <message>
        <location line="+37"/>
        <source>Diagnose connection…</source>
        <translation>诊断连接…</translation>
    </message>
    <message numerus="yes">
        <location line="+14"/>
        <source>Announcements (%n unread)…</source>
        <translation>
            <numerusform>公告（%n 条未读）…</numerusform>
        </translation>
    </message>
    <message>
        <location line="+2"/>
        <source>Announcements…</source>
        <translation>公告…</translation>
    </message>
    <message>
        <location line="+3"/>
        <source>Log out (%1)</source>
        <translation>退出登录 (%1)</translation>
    </message>
    <message>
        <location line="+0"/>
        <source>Log in…</source>
        <translation>登录…</translation>
    </message>
    <message>
        <location line="-24"/>
        <source>Do not disturb</source>
        <translation>勿扰模式</translation>
    </message>
    <message>
        <location line="-28"/>
        <source>Do not disturb is on: announcements are held back (urgent ones still show)</source>
        <translation>勿扰模式已开启：公告暂不弹出（紧急公告仍会显示）</translation>
    </message>
    <message>
        <location line="+7"/>
        <source>Quiet hours until %1: announcements are held back (urgent ones still show)</source>
        <translation>免打扰时段至 %1：公告暂不弹出（紧急公告仍会显示）</translation>
    </message>
    <message>
        <location line="+4"/>
        <source>IT&apos;s settings could not all be used: see the log</source>
        <translation>IT 的部分设置无法使用：请查看日志</translation>
    </message>
    <message>
        <location line="+10"/>
        <source>Reconnect now</source>
        <translation>立即重新连接</translation>
    </message>
    <message>
        <location line="+11"/>
        <source>Settings…</source>
        <translation>设置…</translation>
    </message>
    <message>
        <location line="+3"/>
        <source>Quit</source>
        <translation>退出</translation>
    </message>
</context>
<context>
    <name>Updated</name>
    <message>
        <location filename="../../app/ui/widgets.py" line="+50"/>
        <source>Updated at %1</source>
        <translation>更新于 %1</translation>
    </message>
</context>
<context>
    <name>UrgentWindow</name>
    <message>
        <location filename="../../app/ui/urgent_window.py" line="+58"/>
        <source>Urgent announcement — %1</source>
        <translation>紧急公告 — %1</translation>
    </message>
</context>
<context>
    <name>Withdrawn</name>
    <message>
        <location filename="../../app/ui/widgets.py" line="-8"/>
        <source>Withdrawn at %1</source>
        <translation>已于 %1 撤回</translation>
    </message>
</context>
</TS>
