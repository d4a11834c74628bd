<?xml version="1.0" encoding="utf-8"?>
<!DOCTYPE TS>
<TS version="2.1" language="en" sourcelanguage="en">
<context>
    <name>Notifier</name>
    <message numerus="yes">
        <location filename="../../app/ui/notifier.py" line="+567"/>
        <source>%n new announcements</source>
        <translation>
            <numerusform>%n new announcement</numerusform>
            <numerusform>%n new announcements</numerusform>
        </translation>
    </message>
</context>
<context>
    <name>Tray</name>
    <message numerus="yes">
        <location filename="../../app/ui/tray.py" line="+141"/>
        <source>Offline: trying again in %n s</source>
        <translation>
            <numerusform>Offline: trying again in %n s</numerusform>
            <numerusform>Offline: trying again in %n s</numerusform>
        </translation>
    </message>
    <message numerus="yes">
        <location line="+78"/>
        <source>%n unread announcement(s)</source>
        <translation>
            <numerusform>%n unread announcement</numerusform>
            <numerusform>%n unread announcements</numerusform>
        </translation>
    </message>
    <message numerus="yes">
        <location line="+51"/>
        <source>Announcements (%n unread)…</source>
        <translation>
            <numerusform>Announcements (%n unread)…</numerusform>
            <numerusform>Announcements (%n unread)…</numerusform>
        </translation>
    </message>
</context>
</TS>
