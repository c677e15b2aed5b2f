document.querySelector('#app').textContent = 'procclean e2e fixture (vite)'
