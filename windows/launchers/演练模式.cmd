@echo off
rem Rehearsal: simulated devices, a demo roster and a local collector; real data untouched.
title qm-station rehearsal
"%~dp0python\python.exe" -m station serve --simulate --open %*
if errorlevel 1 pause
